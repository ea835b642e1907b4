package lambdasim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Header names of the Extensions API [DG-EXT][RIE rapi/handler].
const (
	headerName          = "Lambda-Extension-Name"
	headerIdentifier    = "Lambda-Extension-Identifier"
	headerAcceptFeature = "Lambda-Extension-Accept-Feature"
	headerErrorType     = "Lambda-Extension-Function-Error-Type"
	headerEventID       = "Lambda-Extension-Event-Identifier"
)

// Error types of the Extensions API, as RIE's rapi/handler/constants.go names them.
const (
	errTypeMissingIdentifier = "Extension.MissingExtensionIdentifier"
	errTypeInvalidIdentifier = "Extension.InvalidExtensionIdentifier"
	errTypeUnknownIdentifier = "Extension.UnknownExtensionIdentifier"
	errTypeInvalidName       = "Extension.InvalidExtensionName"
	errTypeRegistrationClose = "Extension.RegistrationClosed"
	errTypeInvalidState      = "Extension.InvalidExtensionState"
	errTypeMissingHeader     = "Extension.MissingHeader"
	errTypeInvalidEventType  = "Extension.InvalidEventType"
	errTypeInvalidRequest    = "InvalidRequestFormat"
	errTypeSubscriptionClose = "Telemetry.SubscriptionClosed"
)

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2020-01-01/extension/register", s.handleRegister)
	mux.HandleFunc("GET /2020-01-01/extension/event/next", s.handleNext)
	mux.HandleFunc("POST /2020-01-01/extension/init/error", s.handleInitError)
	mux.HandleFunc("POST /2020-01-01/extension/exit/error", s.handleExitError)
	mux.HandleFunc("PUT /2022-07-01/telemetry", s.handleSubscribe)
	mux.HandleFunc("PUT /2022-07-01/telemetry/", s.handleSubscribe)
	return mux
}

// writeError answers {"errorMessage", "errorType"} with status.
func writeError(w http.ResponseWriter, status int, errType, format string, args ...any) {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{fmt.Sprintf(format, args...), errType})
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// faultLocked counts the call and asks Config.Faults. It returns true when
// it answered.
func (s *Sim) faultLocked(w http.ResponseWriter, endpoint, name string) bool {
	key := endpoint + "\x00" + name
	s.calls[key]++
	if s.cfg.Faults == nil {
		return false
	}
	f := s.cfg.Faults(Call{Endpoint: endpoint, Ext: name, N: s.calls[key]})
	if f == nil {
		return false
	}
	writeError(w, f.Status, f.ErrorType, "%s", f.ErrorMessage)
	return true
}

// authLocked resolves the caller from Lambda-Extension-Identifier, answering
// the request itself when it cannot.
func (s *Sim) authLocked(w http.ResponseWriter, r *http.Request, endpoint string) *ext {
	id := r.Header.Get(headerIdentifier)
	switch {
	case id == "":
		writeError(w, http.StatusForbidden, errTypeMissingIdentifier, "Missing %s header", headerIdentifier)
		return nil
	case !isUUID(id):
		writeError(w, http.StatusForbidden, errTypeInvalidIdentifier, "Invalid %s", headerIdentifier)
		return nil
	}
	e := s.byID[id]
	if e == nil {
		writeError(w, http.StatusForbidden, errTypeUnknownIdentifier, "Unknown extension %s", id)
		return nil
	}
	if s.faultLocked(w, endpoint, e.name) {
		return nil
	}
	if e.failed != "" {
		writeError(w, http.StatusForbidden, errTypeInvalidState, "extension %s reported %s; no further calls are accepted", e.name, e.failed)
		return nil
	}
	return e
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// handleRegister serves POST /2020-01-01/extension/register [DG-EXT].
func (s *Sim) handleRegister(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get(headerName)
	var req struct {
		Events []string `json:"events"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		writeError(w, http.StatusForbidden, errTypeRegistrationClose, "Extension registration closed already")
		return
	}
	if s.faultLocked(w, "register", name) {
		return
	}
	if name == "" {
		writeError(w, http.StatusForbidden, errTypeInvalidName, "Empty extension name")
		return
	}
	if err != nil {
		writeError(w, http.StatusForbidden, errTypeInvalidRequest, "%s", err.Error())
		return
	}
	var onInvoke, onShutdown bool
	for _, ev := range req.Events {
		switch ev {
		case "INVOKE":
			onInvoke = true
		case "SHUTDOWN":
			onShutdown = true
		default:
			writeError(w, http.StatusForbidden, errTypeInvalidEventType, "%s: invalid event type", ev)
			return
		}
	}
	var e *ext
	for _, x := range s.exts {
		if x.name == name {
			e = x
		}
	}
	switch {
	case !s.regOpen:
		writeError(w, http.StatusForbidden, errTypeRegistrationClose, "Extension registration closed already")
		return
	case e == nil:
		// Lambda would treat it as an internal extension; the simulator has none.
		writeError(w, http.StatusForbidden, errTypeInvalidName,
			"no extension file named %q was launched (Lambda-Extension-Name must be the executable's file name)", name)
		return
	case e.registered:
		writeError(w, http.StatusForbidden, errTypeInvalidState, "Extension with this name already registered")
		return
	}
	e.registered, e.onInvoke, e.onShutdn = true, onInvoke, onShutdown
	e.id = newUUID()
	s.byID[e.id] = e
	e.proc.registered = s.since()
	s.markLocked(Mark{Kind: MarkRegister, At: e.proc.registered, Ext: name, Detail: strings.Join(e.events(), ",")})
	s.notifyLocked()

	resp := struct {
		FunctionName    string `json:"functionName"`
		FunctionVersion string `json:"functionVersion"`
		Handler         string `json:"handler"`
		AccountID       string `json:"accountId,omitempty"`
	}{s.cfg.FunctionName, s.cfg.FunctionVersion, s.cfg.Handler, ""}
	for f := range strings.SplitSeq(r.Header.Get(headerAcceptFeature), ",") {
		if strings.TrimSpace(f) == "accountId" {
			resp.AccountID = s.cfg.AccountID
		}
	}
	b, _ := json.Marshal(resp)
	w.Header().Set(headerIdentifier, e.id)
	writeJSON(w, http.StatusOK, b)
}

// handleNext serves GET /2020-01-01/extension/event/next: it blocks until an
// event is dispatched to the caller [DG-EXT].
func (s *Sim) handleNext(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	e := s.authLocked(w, r, "next")
	if e == nil {
		s.mu.Unlock()
		return
	}
	if e.waiting {
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, errTypeInvalidState, "extension %s is already waiting in /event/next", e.name)
		return
	}
	now := s.since()
	s.markLocked(Mark{Kind: MarkNext, At: now, Ext: e.name})
	e.nexts++
	e.lastNext = now
	e.busy = false
	if e.proc.firstNext == 0 {
		e.proc.firstNext = now
	}
	if ev := e.pending; ev != nil {
		e.pending = nil
		e.busy = true
		s.handedLocked(e, *ev)
		s.notifyLocked()
		s.mu.Unlock()
		writeEvent(w, ev.body)
		return
	}
	e.waiting = true
	s.notifyLocked()
	s.mu.Unlock()

	select {
	case ev := <-e.evc:
		writeEvent(w, ev.body)
	case <-r.Context().Done():
		// The caller went away (its process died, or the Sim closed).
		s.mu.Lock()
		if e.waiting {
			e.waiting = false
		} else {
			ev := <-e.evc // dispatched concurrently: keep it for the next call
			e.pending = &ev
			e.busy = false
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

func writeEvent(w http.ResponseWriter, body []byte) {
	w.Header().Set(headerEventID, newUUID())
	writeJSON(w, http.StatusOK, body)
}

// handleInitError serves POST /2020-01-01/extension/init/error [DG-EXT].
func (s *Sim) handleInitError(w http.ResponseWriter, r *http.Request) {
	s.reportError(w, r, "init/error")
}

// handleExitError serves POST /2020-01-01/extension/exit/error [DG-EXT].
func (s *Sim) handleExitError(w http.ResponseWriter, r *http.Request) {
	s.reportError(w, r, "exit/error")
}

func (s *Sim) reportError(w http.ResponseWriter, r *http.Request, endpoint string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.authLocked(w, r, endpoint)
	if e == nil {
		return
	}
	errType := r.Header.Get(headerErrorType)
	if errType == "" {
		writeError(w, http.StatusForbidden, errTypeMissingHeader, "%s not found", headerErrorType)
		return
	}
	kind := MarkExitError
	if endpoint == "init/error" {
		if s.phase != phaseInit {
			writeError(w, http.StatusForbidden, errTypeInvalidState, "init/error outside Init")
			return
		}
		kind = MarkInitError
		e.proc.initError = errType
	} else {
		e.proc.exitError = errType
	}
	e.failed = errType
	s.markLocked(Mark{Kind: kind, Ext: e.name, Detail: errType + " " + string(body)})
	s.notifyLocked()
	writeJSON(w, http.StatusAccepted, []byte(`{"status":"OK"}`))
}

// handleSubscribe serves PUT /2022-07-01/telemetry [TEL-REF].
func (s *Sim) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	body, rerr := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.TelemetryNotSupported {
		// RIE classic mode: 202 without looking at the caller [RIE rapi/handler/runtimelogs_stub.go].
		s.markLocked(Mark{Kind: MarkSubscribe, Status: http.StatusAccepted, Detail: "Telemetry.NotSupported"})
		writeJSON(w, http.StatusAccepted, []byte(`{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}`))
		return
	}
	if s.calls == nil {
		writeError(w, http.StatusForbidden, errTypeSubscriptionClose, "Telemetry API subscription is closed")
		return
	}
	e := s.authLocked(w, r, "telemetry")
	if e == nil {
		return
	}
	if !s.subOpen {
		s.markLocked(Mark{Kind: MarkSubscribe, Ext: e.name, Status: http.StatusForbidden, Err: errTypeSubscriptionClose})
		writeError(w, http.StatusForbidden, errTypeSubscriptionClose, "Telemetry API subscription is closed")
		return
	}
	if rerr != nil {
		writeError(w, http.StatusBadRequest, "ValidationError", "Failed to read request body: %s", rerr)
		return
	}
	sub, err := parseSubscription(body)
	if err != nil {
		s.markLocked(Mark{Kind: MarkSubscribe, Ext: e.name, Status: http.StatusBadRequest, Err: err.Error()})
		writeError(w, http.StatusBadRequest, "ValidationError", "%s", err.Error())
		return
	}
	if e.sub == nil {
		e.sub = s.newSubscriber(e, sub)
		s.subs = append(s.subs, e.sub)
		// Replay what this environment produced so far (init events come
		// before any subscription), as RIE's managed-instances mode does.
		for i := range s.events {
			ev := &s.events[i]
			if ev.Generation == s.gen && ev.Bytes != nil && ev.Type != TypeLogsDropped && sub.wants(category(ev.Type)) {
				s.pushLocked(e.sub, ev.ID, ev.Bytes, ev.Time)
			}
		}
		s.bg.Add(1)
		go e.sub.run()
	} else {
		e.sub.reconfigure(sub)
	}
	e.proc.subscribed = s.since()
	s.markLocked(Mark{Kind: MarkSubscribe, At: e.proc.subscribed, Ext: e.name, Status: http.StatusOK, Detail: sub.uri})
	s.emitLocked(TypeTelemetrySubscription, "", "", s.gen, mustRecord(subscriptionRecord{
		Name: e.name, State: "Subscribed", Types: sub.types,
	}), nil)
	s.notifyLocked()
	writeJSON(w, http.StatusOK, []byte(`"OK"`))
}
