package lambdasim

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/internal/jsonesc"
)

// process is one launched extension executable. Fields after start are
// guarded by Sim.mu.
type process struct {
	name string
	gen  int
	cmd  *exec.Cmd
	pid  int

	started    time.Duration // offset of the moment just before fork/exec
	registered time.Duration // offsets; 0 = not (yet)
	subscribed time.Duration
	firstNext  time.Duration
	exitedAt   time.Duration
	exited     chan struct{} // closed when the process has been reaped
	state      *os.ProcessState
	launchErr  error
	killed     string // why the simulator sent SIGKILL, "" if it did not
	initError  string
	exitError  string
	peakRSS    int64 // bytes, sampled from /proc while alive
}

func (p *process) alive() bool {
	if p.launchErr != nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process group of p (extensions run in their own
// group, so a shell script extension and its children stop together).
func (p *process) signal(sig syscall.Signal) {
	if p.pid > 0 && p.alive() {
		_ = syscall.Kill(-p.pid, sig) // ESRCH: it exited meanwhile
	}
}

// waitStopped polls /proc until the process is stopped, so that a freeze is
// complete when it returns (SIGSTOP is delivered asynchronously). It gives
// up after limit, or when the process is exiting.
func (p *process) waitStopped(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for i := 0; p.alive(); i++ {
		switch readProcState(p.pid) {
		case 'T', 't', 'Z', 'X', 0:
			return
		}
		if time.Now().After(deadline) {
			return
		}
		if i < 100 {
			runtime.Gosched() // usually stopped within microseconds
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// readProcState returns the state letter of /proc/<pid>/stat, or 0.
func readProcState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// sampleRSS reads VmHWM (peak resident set) while the process lives.
func (p *process) sampleRSS() {
	if !p.alive() {
		return
	}
	if kb := readProcStatusKB(p.pid, "VmHWM:"); kb*1024 > p.peakRSS {
		p.peakRSS = kb * 1024
	}
}

// ProcessStats are the figures of one extension process. Offsets are from
// Sim.Epoch unless said otherwise; zero means "did not happen".
type ProcessStats struct {
	Name       string
	PID        int
	Generation int
	// Started is when the simulator forked it (just before exec).
	Started time.Duration
	// Registered, Subscribed and FirstNext are measured from Started: the
	// cold-start figures (process start to registration, to an accepted
	// subscription, to the first /event/next).
	Registered time.Duration
	Subscribed time.Duration
	FirstNext  time.Duration
	// Exited is the offset at which it was reaped; 0 while it runs.
	Exited time.Duration
	// ExitCode is the exit status, or -1 when a signal ended it (Signal).
	ExitCode int
	Signal   string
	// Killed says why the simulator sent SIGKILL ("" if it did not).
	Killed string
	// PeakRSS is the peak resident set in bytes: the largest VmHWM read from
	// /proc/<pid>/status, sampled every rssInterval while the process lives
	// and at every freeze. Not rusage ru_maxrss: os/exec starts children with
	// CLONE_VM|CLONE_VFORK, and exec folds the parent's high-water RSS into
	// the child's ru_maxrss, so it would report the simulator's own peak.
	PeakRSS int64
	// CPU is user+system time: from rusage after exit, else /proc/<pid>/stat
	// (10 ms resolution).
	CPU                  time.Duration
	InitError, ExitError string
	LaunchError          string
}

func (p *process) stats() ProcessStats {
	st := ProcessStats{
		Name: p.name, PID: p.pid, Generation: p.gen, Started: p.started,
		Exited: p.exitedAt, Killed: p.killed, InitError: p.initError, ExitError: p.exitError,
		PeakRSS: p.peakRSS,
	}
	rel := func(d time.Duration) time.Duration {
		if d == 0 {
			return 0
		}
		return d - p.started
	}
	st.Registered, st.Subscribed, st.FirstNext = rel(p.registered), rel(p.subscribed), rel(p.firstNext)
	if p.launchErr != nil {
		st.LaunchError = p.launchErr.Error()
		return st
	}
	if p.state != nil {
		st.ExitCode = p.state.ExitCode()
		if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.Signal = ws.Signal().String()
		}
		if ru, ok := p.state.SysUsage().(*syscall.Rusage); ok {
			st.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		return st
	}
	if kb := readProcStatusKB(p.pid, "VmHWM:"); kb*1024 > st.PeakRSS {
		st.PeakRSS = kb * 1024
	}
	st.CPU = readProcCPU(p.pid)
	return st
}

// readProcStatusKB returns a "kB" field of /proc/<pid>/status, or 0.
func readProcStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	rest := b[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := strings.Fields(string(rest))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(f[0], 10, 64)
	return v
}

// readProcCPU returns utime+stime of a live process from /proc/<pid>/stat.
// The kernel reports them in USER_HZ ticks, which is 100 on Linux.
func readProcCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stm, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stm) * 10 * time.Millisecond
}

// launch starts e's executable. It is called without Sim.mu held, one
// goroutine per extension, so all extensions start in parallel.
func (s *Sim) launch(e *ext, env []string) {
	cmd := exec.Command(e.spec.Path, e.spec.Args...)
	cmd.Env = env
	cmd.Stdout = &logWriter{sim: s, e: e, stream: "stdout"}
	cmd.Stderr = &logWriter{sim: s, e: e, stream: "stderr"}
	// Own process group: freeze and kill reach children too. Pdeathsig: no
	// orphan extension survives a crashed test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	p := e.proc

	s.mu.Lock()
	p.started = s.since()
	s.mu.Unlock()
	err := cmd.Start()

	s.mu.Lock()
	p.cmd = cmd
	if err != nil {
		p.launchErr = fmt.Errorf("cannot launch extension %s: %w", e.name, err)
		close(p.exited)
		s.markLocked(Mark{Kind: MarkLaunch, Ext: e.name, Err: err.Error(), Detail: e.spec.Path})
		s.notifyLocked()
		s.mu.Unlock()
		return
	}
	p.pid = cmd.Process.Pid
	s.markLocked(Mark{Kind: MarkLaunch, At: p.started, Ext: e.name, Detail: e.spec.Path})
	if s.frozen && !s.cfg.NoFreeze {
		p.signal(syscall.SIGSTOP) // launched while the environment froze (a failed Init)
	}
	s.mu.Unlock()

	s.bg.Add(2)
	go s.reap(e)
	go s.watchRSS(e)
}

// rssInterval is how often a live extension's VmHWM is sampled. VmHWM is a
// high-water mark, so sampling only has to be recent enough before exit.
const rssInterval = 10 * time.Millisecond

// watchRSS samples e's peak resident set until its process exits.
func (s *Sim) watchRSS(e *ext) {
	defer s.bg.Done()
	t := time.NewTicker(rssInterval)
	defer t.Stop()
	for {
		select {
		case <-e.proc.exited:
			return
		case <-t.C:
			s.mu.Lock()
			e.proc.sampleRSS()
			s.mu.Unlock()
		}
	}
}

// reap waits for e's process and records how it ended.
func (s *Sim) reap(e *ext) {
	defer s.bg.Done()
	p := e.proc
	err := p.cmd.Wait()
	e.flushLogs()
	s.mu.Lock()
	defer s.mu.Unlock()
	p.exitedAt = s.since()
	p.state = p.cmd.ProcessState
	close(p.exited)
	m := Mark{Kind: MarkExit, Ext: e.name, Status: -1}
	if p.state != nil {
		m.Status = p.state.ExitCode()
		if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			m.Detail = ws.Signal().String()
		}
	} else if err != nil {
		m.Err = err.Error()
	}
	s.markLocked(m)
	if e.sub != nil {
		e.sub.stop()
	}
	s.notifyLocked()
}

// killLocked sends SIGKILL to e's process group and records why.
func (s *Sim) killLocked(e *ext, why string) {
	p := e.proc
	if !p.alive() {
		return
	}
	if p.killed == "" {
		p.killed = why
	}
	p.signal(syscall.SIGCONT) // harmless; a stopped process dies on SIGKILL anyway
	p.signal(syscall.SIGKILL)
	s.markLocked(Mark{Kind: MarkKill, Ext: e.name, Detail: why})
}

// logWriter turns an extension's stdout/stderr into `extension` telemetry
// events, one per line, as Lambda does, and copies the lines to
// Config.Output. exec calls Write from one goroutine per stream.
type logWriter struct {
	sim    *Sim
	e      *ext
	stream string
	buf    []byte
}

// maxLogRecord splits longer lines into several extension events (Lambda's
// limit is not documented); Config.Output still gets the whole line.
const maxLogRecord = 256 << 10

// maxLogLine bounds a line without a newline; longer output is cut.
const maxLogLine = 64 << 20

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) < maxLogLine {
				break
			}
			i = len(w.buf)
		}
		w.sim.extensionLog(w.e, w.buf[:i])
		w.buf = w.buf[min(i+1, len(w.buf)):]
	}
	if len(w.buf) == 0 {
		w.buf = nil // release a large buffer once drained
	}
	return len(p), nil
}

// flush emits a last line without a newline.
func (w *logWriter) flush() {
	if len(w.buf) > 0 {
		w.sim.extensionLog(w.e, w.buf)
		w.buf = nil
	}
}

// flushLogs flushes both streams after Wait returned (exec's copy goroutines
// have finished by then).
func (e *ext) flushLogs() {
	if cmd := e.proc.cmd; cmd != nil {
		for _, w := range []any{cmd.Stdout, cmd.Stderr} {
			if lw, ok := w.(*logWriter); ok {
				lw.flush()
			}
		}
	}
}

// extensionLog records one line of extension output.
func (s *Sim) extensionLog(e *ext, line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if out := s.cfg.Output; out != nil {
		s.outMu.Lock()
		_, _ = fmt.Fprintf(out, "[%s] %s\n", e.name, line)
		s.outMu.Unlock()
	}
	for first := true; first || len(line) > 0; first = false {
		chunk := line[:min(len(line), maxLogRecord)]
		line = line[len(chunk):]
		rec := jsonesc.AppendString(make([]byte, 0, len(chunk)+8), string(chunk))
		s.mu.Lock()
		s.emitLocked(TypeExtensionLog, "", e.name, e.gen, rec, nil)
		s.mu.Unlock()
	}
}

// extensionEnv builds the environment of an extension process: what Lambda
// gives extensions [DG-EXT][DG-ENV], then Config.Env, then Extension.Env
// (later entries win).
func (s *Sim) extensionEnv(spec Extension) []string {
	var env []string
	if s.cfg.InheritEnv {
		env = os.Environ()
	} else if path, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+path)
	}
	c := &s.cfg
	env = append(env,
		"AWS_LAMBDA_RUNTIME_API="+s.addr,
		"AWS_REGION="+c.Region,
		"AWS_DEFAULT_REGION="+c.Region,
		"AWS_LAMBDA_FUNCTION_NAME="+c.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION="+c.FunctionVersion,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(c.MemorySizeMB),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
	)
	env = append(env, c.Env...)
	return append(env, spec.Env...)
}

// extensionName is the name Lambda expects in Lambda-Extension-Name: the
// executable's file name.
func extensionName(path string) string { return filepath.Base(path) }

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)
