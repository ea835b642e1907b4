// Package atstart sends the extension's registration during package
// initialisation (earlyreg.Send, with this process's environment and
// executable): importing it is what does it, so package earlysub, which
// main imports, is its only importer. Take hands the registration to
// earlysub, which reads its answer and subscribes.
package atstart

import (
	"os"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/earlyreg"
)

// Started is when package initialisation reached this package, KTE's
// first: before the AWS SDK's packages, fasthttp and net, and before the
// registration is written.
var Started = time.Now()

// sent is the registration written by init, until Take.
var sent *earlyreg.Registration

func init() {
	if len(os.Args) > 0 {
		sent = earlyreg.Send(os.LookupEnv, os.Args[0])
	}
}

// Take returns the registration written during initialisation and forgets
// it: the first call gets it, later ones nil. Nil when none was written.
// Not safe for concurrent use (main calls it once).
func Take() *earlyreg.Registration {
	r := sent
	sent = nil
	return r
}
