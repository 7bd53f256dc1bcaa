// Package deploy holds the files to run termd in production: an example
// configuration (termd.toml) and a systemd unit (termd.service), which
// `make install` installs. Its only code is the test that keeps them
// valid (deploy_test.go); docs/operations.md explains them.
package deploy
