package lambdasim

import (
	"fmt"
	"time"
)

// MarkKind says what a timeline Mark records.
type MarkKind uint8

// Timeline mark kinds.
const (
	// MarkLaunch: an extension process was started (Ext, Detail = path).
	MarkLaunch MarkKind = iota + 1
	// MarkRegister: an extension registered (Ext, Detail = events).
	MarkRegister
	// MarkSubscribe: a Telemetry API subscription was answered (Ext, Status).
	MarkSubscribe
	// MarkNext: an extension called /event/next (Ext).
	MarkNext
	// MarkInitStart: Init began (Detail = phase).
	MarkInitStart
	// MarkInitDone: every extension called /event/next; Init ended (Err on failure).
	MarkInitDone
	// MarkInvoke: INVOKE handed to an extension (Ext, RequestID).
	MarkInvoke
	// MarkRuntimeDone: the simulated function ended (RequestID, Detail = status).
	MarkRuntimeDone
	// MarkExtensionsDone: every extension finished the invocation (RequestID).
	MarkExtensionsDone
	// MarkFreeze: the environment was frozen (SIGSTOP unless Config.NoFreeze).
	MarkFreeze
	// MarkThaw: the environment was thawed (SIGCONT).
	MarkThaw
	// MarkPost: a telemetry POST finished. At is when it started; Latency,
	// Status (0 on a connection error), Err, Events and Bytes describe it;
	// Detail is "retry" for a retried batch.
	MarkPost
	// MarkLogsDropped: a subscriber's queue overflowed (Ext = subscriber,
	// Events = dropped IDs, Bytes = dropped bytes).
	MarkLogsDropped
	// MarkShutdown: SHUTDOWN handed to an extension (Ext, Detail = reason).
	MarkShutdown
	// MarkKill: the simulator sent SIGKILL (Ext, Detail = why).
	MarkKill
	// MarkExit: an extension process ended (Ext, Status = exit code or -1,
	// Detail = signal).
	MarkExit
	// MarkInitError, MarkExitError: /init/error or /exit/error (Ext, Detail = error type).
	MarkInitError
	MarkExitError
	// MarkReset: the environment is being reset (Detail = reason).
	MarkReset
)

var markNames = [...]string{
	MarkLaunch: "launch", MarkRegister: "register", MarkSubscribe: "subscribe", MarkNext: "next",
	MarkInitStart: "initStart", MarkInitDone: "initDone", MarkInvoke: "INVOKE", MarkRuntimeDone: "runtimeDone",
	MarkExtensionsDone: "extensionsDone", MarkFreeze: "freeze", MarkThaw: "thaw", MarkPost: "POST",
	MarkLogsDropped: "logsDropped", MarkShutdown: "SHUTDOWN", MarkKill: "kill", MarkExit: "exit",
	MarkInitError: "initError", MarkExitError: "exitError", MarkReset: "reset",
}

func (k MarkKind) String() string {
	if int(k) < len(markNames) && markNames[k] != "" {
		return markNames[k]
	}
	return fmt.Sprintf("MarkKind(%d)", k)
}

// Mark is one timeline entry.
type Mark struct {
	Kind MarkKind
	// At is the monotonic offset from Sim.Epoch.
	At time.Duration
	// Ext names the extension (or the subscriber) concerned, if any.
	Ext       string
	RequestID string
	// Status is an HTTP status (MarkPost, MarkSubscribe) or an exit code (MarkExit).
	Status int
	// Latency is the duration of a POST.
	Latency time.Duration
	// Events are the event IDs a POST carried (MarkPost) or dropped (MarkLogsDropped).
	Events []int
	// Bytes is the POST body size or the dropped bytes.
	Bytes  int
	Err    string
	Detail string
}

func (m Mark) String() string {
	s := fmt.Sprintf("%10.3fms %-14s", float64(m.At.Microseconds())/1000, m.Kind)
	if m.Ext != "" {
		s += " ext=" + m.Ext
	}
	if m.RequestID != "" {
		s += " req=" + m.RequestID
	}
	if m.Kind == MarkPost {
		s += fmt.Sprintf(" status=%d events=%d bytes=%d latency=%s", m.Status, len(m.Events), m.Bytes, m.Latency)
	}
	if m.Detail != "" {
		s += " " + m.Detail
	}
	if m.Err != "" {
		s += " err=" + m.Err
	}
	return s
}
