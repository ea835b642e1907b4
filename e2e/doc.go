// Package e2e holds the end-to-end and conformance tests of the extension
// and the small helpers they share with cmd/kte-demo.
//
// The tests build the extension binary (TestMain), run it inside the local
// Lambda simulator (package lambdasim) or under AWS's Runtime Interface
// Emulator, ship to kinesalite (internal/kinesalite), read the stream back
// and account for every generated event byte for byte: in Kinesis, on the
// extension's stderr as a KTE_UNDELIVERED line, or deliberately not expected
// (see Reconcile). They need node and the kinesalite package (make deps);
// outside CI a missing tool skips them, under CI=true it fails them. The
// emulator tests also need root and unshare(1).
//
// The helpers (ParseRecord, Events, Reconcile, Output, Workload) are safe for
// concurrent use only where their docs say so.
package e2e
