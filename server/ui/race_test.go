//go:build race

package ui

// raceEnabled: the race detector slows everything several times, so
// timing targets are only asserted without it.
const raceEnabled = true
