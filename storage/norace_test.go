//go:build !race

package storage

// raceEnabled is set when tests run under the race detector, which
// allocates on its own and so breaks allocation counts.
const raceEnabled = false
