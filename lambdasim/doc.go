// Package lambdasim is a local Lambda execution environment for extensions: it
// serves the Extensions API (2020-01-01) and the Telemetry API (2022-07-01) on
// 127.0.0.1, launches real extension processes, drives INVOKE and SHUTDOWN,
// freezes the processes between invocations with SIGSTOP, and delivers
// realistic telemetry to subscribers as JSON-array POSTs, honouring their
// buffering settings. It exists so that end-to-end tests, `make demo` and the
// bench harnesses can run an extension without AWS.
//
// It models the documented platform (../shared/reference/protocol.md sections
// 1-3: the AWS Lambda Developer Guide, the Telemetry API reference and the
// Runtime Interface Emulator's rapid core), not our extension:
//
//   - Init: every extension is launched in parallel; platform.initStart is
//     produced first; the simulated runtime initialises once every extension
//     has registered, then registration closes; Init ends when every
//     extension has called /event/next (limit Config.InitTimeout, 10 s), then
//     subscription closes and platform.initRuntimeDone, one platform.extension
//     per extension and platform.initReport are produced, in that order.
//   - Invoke: thaw (SIGCONT), platform.start, INVOKE to every extension
//     registered for it, function log lines spread over the simulated
//     duration, platform.runtimeDone at the moment the function ends, then a
//     wait until every extension has called /event/next again (never beyond
//     the deadline), platform.report, freeze (SIGSTOP). The report of invoke N
//     is therefore delivered during invoke N+1 or at shutdown, as on Lambda.
//   - Timeout (the function or an extension overruns the deadline) and crash
//     reset the environment as rapid does: platform.runtimeDone with status
//     "timeout" or "error" (Runtime.ExitError), then SHUTDOWN with reason
//     "timeout" or "failure" and a 2 s deadline; the next Invoke initialises
//     a fresh environment (phase "invoke"). The failed request's
//     platform.report is produced before the SHUTDOWN, unless
//     Config.NoReportAfterReset withholds it (on Lambda it may never come).
//   - Shutdown: thaw, SIGKILL for extensions not registered for SHUTDOWN,
//     SHUTDOWN {shutdownReason, deadlineMs} to the others, telemetry keeps
//     flowing until each extension exits, SIGKILL at the deadline.
//   - Telemetry: one queue per subscriber, filled with every event of its
//     types produced since the environment started (init events produced
//     before the subscription are replayed, as RIE's managed-instances mode
//     does). A batch is POSTed when maxItems or maxBytes is reached or
//     timeoutMs has passed since the oldest queued event, only while thawed,
//     one POST at a time. The batch holds events until their size reaches
//     maxBytes (so a body stays under 2*maxBytes, as the guide warns). A
//     failed POST (non-2xx or connection error) is retried with the same
//     batch after an exponential backoff; later events wait behind it. When
//     a queue exceeds Config.SubscriberBufferBytes the oldest queued events
//     are dropped and a platform.logsDropped event is sent to that
//     subscriber ahead of its queue (it is never dropped itself, and is sent
//     whatever types it subscribed to).
//
// Every generated event is kept byte-exact (Generated), with a unique ID
// (its index); function log lines carry a unique sequence number ("seq=N")
// and the request id. Every observable step is recorded on a timeline with
// monotonic offsets (Timeline), and per-process figures (start, first
// /event/next, subscription, peak RSS, CPU) are kept (Processes).
//
// Choices where the documentation is silent (marked in the code): retry
// backoff (Config.RetryMin..RetryMax), the per-subscriber memory bound, the
// POST has no timeout (a frozen extension holds it, as a frozen microVM
// would), an unknown Lambda-Extension-Name is refused (the simulator has no
// internal extensions), a JSON-format function log record is an object for
// every schemaVersion, and TCP destinations, the Logs API, SnapStart
// restore events, the runtime's own shutdown share and the vendor-reported
// splitting of records larger than maxBytes are not modelled.
//
// A Sim is safe for concurrent use, but its lifecycle calls (Start, Init,
// Invoke, Shutdown) must be made one at a time, as Lambda sends one request
// at a time to an execution environment.
package lambdasim
