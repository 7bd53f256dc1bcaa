package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
)

// refHMAC is the standard library's HMAC, the reference for MAC.
func refHMAC(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}
