//go:build !race

package lambdasim

const raceEnabled = false
