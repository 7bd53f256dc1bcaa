package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/termd/termd/protocol"
)

// Modes of the files keygen writes: the private key is readable by its
// owner only; the public key is meant to be copied into firmware and
// termd's config.
const (
	privateKeyMode = 0o600
	publicKeyMode  = 0o644
	// pubSuffix names the public key file next to the private one.
	pubSuffix = ".pub"
)

// releaseToSign is the part of GET /v1/releases/{id} that release_sig
// binds (docs/upgrades.md, "Signing releases"). termctl declares only
// these fields so it signs exactly what the spec's digest covers.
type releaseToSign struct {
	ID      string `json:"id"`
	AppID   string `json:"app_id"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"` // hex
	Size    uint64 `json:"size"`   // bytes
}

// releaseSignature is the body of PUT /v1/releases/{id}/signature.
type releaseSignature struct {
	Sig string `json:"sig"` // hex of the 64-byte release_sig
}

func (a *app) keygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out KEYFILE",
		Short: "Make an ECDSA P-256 release key pair: KEYFILE (private, 0600) and KEYFILE.pub",
		Long: `keygen writes a new release signing key: KEYFILE holds the private key
(PEM PKCS#8, mode 0600) and KEYFILE.pub the public key (PEM PKIX). Keep
KEYFILE offline; pin KEYFILE.pub in firmware and list it in termd's
[upgrade] release_public_keys. keygen never overwrites an existing file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out KEYFILE is required")
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			priv, pub, err := protocol.MarshalReleaseKeys(key)
			if err != nil {
				return err
			}
			// Both names are checked before either is written, so a
			// refusal leaves no half pair behind.
			for _, p := range []string{out, out + pubSuffix} {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s exists: keygen does not overwrite a key", p)
				}
			}
			if err := writeNew(out, priv, privateKeyMode); err != nil {
				return err
			}
			if err := writeNew(out+pubSuffix, pub, publicKeyMode); err != nil {
				os.Remove(out)
				return err
			}
			a.printf("private key: %s\npublic key:  %s\nkey id:      %s\n", out, out+pubSuffix, keyID(&key.PublicKey))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file for the private key (the public key goes to FILE.pub)")
	return cmd
}

// writeNew creates path with mode, failing if it exists, and syncs it: a
// key that is reported written must be on disk.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// keyID is a short fingerprint of a release public key (the first 8
// bytes of the SHA-256 of its PKIX encoding), printed so operators can
// tell keys apart during a rotation.
func keyID(k *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "?"
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

func (a *app) releaseSignCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "sign ID --key KEYFILE",
		Short: "Sign a release offline with a release key and store the signature (GET /v1/releases/{id}, PUT .../signature)",
		Long: `release sign fetches the release, computes release_sig (spec §6.1: ECDSA
P-256 over app_id, version, sha256 and size) with the private key in
KEYFILE on this machine, and stores only the signature in termd; the
private key never leaves this machine. termd verifies it against its
[upgrade] release_public_keys before storing it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return errors.New("--key KEYFILE is required")
			}
			pemBytes, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			key, err := protocol.ParseReleasePrivateKey(pemBytes)
			if err != nil {
				return fmt.Errorf("%s: %w", keyFile, err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			path := "/v1/releases/" + url.PathEscape(args[0])
			var rel releaseToSign
			if _, err := c.getJSON(cmd.Context(), path, &rel); err != nil {
				return err
			}
			digest, err := hex.DecodeString(rel.SHA256)
			if err != nil || len(digest) != protocol.SHA256Size {
				return fmt.Errorf("release %s: sha256 %q is not %d bytes of hex", args[0], rel.SHA256, protocol.SHA256Size)
			}
			if rel.AppID == "" || rel.Version == "" {
				return fmt.Errorf("release %s: the server sent no app_id or version", args[0])
			}
			sig, err := protocol.SignRelease(key, rel.AppID, rel.Version, [protocol.SHA256Size]byte(digest), rel.Size)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(releaseSignature{Sig: hex.EncodeToString(sig)})
			b, err := c.call(cmd.Context(), "PUT", path+"/signature", bytes.NewReader(body))
			if err != nil {
				return err
			}
			if a.jsonOut {
				a.printf("%s\n", bytes.TrimSpace(b))
				return nil
			}
			a.printf("signed release %s: app %s version %s sha256 %s size %d (key id %s)\n",
				args[0], rel.AppID, rel.Version, rel.SHA256, rel.Size, keyID(&key.PublicKey))
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "the release private key file (from termctl keygen)")
	return cmd
}

// addSigning registers keygen on root and sign under root's "release"
// command, making a bare "release" parent when no other file has (the
// release commands proper live with the upgrade feature).
func (a *app) addSigning(root *cobra.Command) {
	root.AddCommand(a.keygenCmd())
	for _, c := range root.Commands() {
		if c.Name() == "release" {
			c.AddCommand(a.releaseSignCmd())
			return
		}
	}
	rel := &cobra.Command{Use: "release", Short: "Manage releases"}
	rel.AddCommand(a.releaseSignCmd())
	root.AddCommand(rel)
}
