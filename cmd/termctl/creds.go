package main

import (
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// creds is what a simulated terminal signs its HELLO with, and where it
// came from, so a refusal can say which credential the server rejected.
type creds struct {
	secret []byte        // the fleet secret (K_dev derived from it), or
	key    *protocol.Key // a per-device key (--key)
	from   string        // e.g. "the fleet secret from $TERMD_FLEET_SECRET"
}

// terminalCreds resolves --key (64 hex digits: the device key set with
// `termctl set-key`) or else the fleet secret (--secret, env, data file).
func (a *app) terminalCreds(secretFlag, keyHex string) (creds, error) {
	if keyHex != "" {
		b, err := hex.DecodeString(keyHex)
		if err != nil || len(b) != len(protocol.Key{}) {
			return creds{}, fmt.Errorf("--key must be %d hex digits (the device key set with `termctl set-key`)", 2*len(protocol.Key{}))
		}
		var k protocol.Key
		copy(k[:], b)
		return creds{key: &k, from: "the per-device key from --key"}, nil
	}
	if secretFlag != "" {
		return creds{secret: []byte(secretFlag), from: "the fleet secret from --secret"}, nil
	}
	if s := a.getenv("TERMD_FLEET_SECRET"); s != "" {
		return creds{secret: []byte(s), from: "the fleet secret from $TERMD_FLEET_SECRET"}, nil
	}
	path := filepath.Join(a.dataDir, secretFile)
	s, err := a.readDataFile(secretFile)
	if err != nil {
		return creds{}, fmt.Errorf("no fleet secret: pass --secret or --key, set TERMD_FLEET_SECRET, or run `termd -dev`: %w", err)
	}
	return creds{secret: []byte(s), from: "the fleet secret from " + path}, nil
}

// apply sets the credential on a client config.
func (c creds) apply(cfg *client.Config) {
	cfg.FleetSecret, cfg.Key = c.secret, c.key
}

// explain adds to a HELLO refusal which credential the server rejected
// and what else to try.
func (c creds) explain(err error) error {
	if protocol.StatusOf(err) != protocol.Unauthenticated {
		return err
	}
	hint := "if this device has a per-device key (termctl set-key), pass it with --key"
	if c.key != nil {
		hint = "check it is the key set for this device id (termctl set-key); without --key the fleet secret is used"
	}
	return fmt.Errorf("%w: the HELLO was signed with %s; %s", err, c.from, hint)
}
