package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/metrics/emftest"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func testDefs() []Def {
	return []Def{
		{Name: "EventsReceived", Unit: Count, Kind: Counter},
		{Name: "BytesSent", Unit: Bytes, Kind: Counter},
		{Name: "FlushLatencyMax", Unit: Milliseconds, Kind: Gauge},
		{Name: "RingHighWaterPercent", Unit: Percent, Kind: Gauge},
	}
}

func newEmitter(t *testing.T, w *bytes.Buffer, dims ...Dimension) *Emitter {
	t.Helper()
	e, err := New(w, Options{Namespace: "KTE", Dimensions: dims, Metrics: testDefs()}, t0)
	if err != nil {
		t.Fatalf("cannot create the emitter: %v", err)
	}
	return e
}

// lines splits the output into lines, checking each ends with a newline.
func lines(t *testing.T, out string) []string {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func TestEmitDocumentStructure(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out, Dimension{"FunctionName", "orders-api"}, Dimension{"FunctionVersion", "$LATEST"})
	at := t0.Add(61*time.Second + 234*time.Millisecond)
	if err := e.Emit(at, []float64{120, 4096, 12.5, 3.25}, Property{"FlushMode", "auto:end"}); err != nil {
		t.Fatal(err)
	}
	ls := lines(t, out.String())
	if len(ls) != 1 {
		t.Fatalf("unexpected number of lines; got %d; want 1", len(ls))
	}
	doc, err := emftest.Parse([]byte(ls[0]))
	if err != nil {
		t.Fatalf("invalid EMF document: %v\n%s", err, ls[0])
	}
	if doc.Timestamp != at.UnixMilli() {
		t.Fatalf("unexpected Timestamp; got %d; want %d", doc.Timestamp, at.UnixMilli())
	}
	if doc.Namespace != "KTE" {
		t.Fatalf("unexpected namespace; got %q", doc.Namespace)
	}
	if fmt.Sprint(doc.Dimensions) != "[[FunctionName FunctionVersion]]" {
		t.Fatalf("unexpected dimensions; got %v", doc.Dimensions)
	}
	if doc.DimValues["FunctionName"] != "orders-api" || doc.DimValues["FunctionVersion"] != "$LATEST" {
		t.Fatalf("unexpected dimension values; got %v", doc.DimValues)
	}
	want := []emftest.Metric{
		{Name: "EventsReceived", Unit: "Count", Value: 120},
		{Name: "BytesSent", Unit: "Bytes", Value: 4096},
		{Name: "FlushLatencyMax", Unit: "Milliseconds", Value: 12.5},
		{Name: "RingHighWaterPercent", Unit: "Percent", Value: 3.25},
	}
	if fmt.Sprint(doc.Metrics) != fmt.Sprint(want) {
		t.Fatalf("unexpected metrics; got %v; want %v", doc.Metrics, want)
	}
	if string(doc.Root["FlushMode"]) != `"auto:end"` {
		t.Fatalf("unexpected property; got %s", doc.Root["FlushMode"])
	}
}

func TestEmitCountersAreDeltas(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out)
	f := func(at time.Duration, values []float64, want map[string]float64) {
		t.Helper()
		out.Reset()
		if err := e.Emit(t0.Add(at), values); err != nil {
			t.Fatal(err)
		}
		doc, err := emftest.Parse(out.Bytes())
		if err != nil {
			t.Fatalf("invalid EMF document: %v", err)
		}
		for k, v := range want {
			if doc.Values[k] != v {
				t.Fatalf("unexpected %s at %v; got %v; want %v", k, at, doc.Values[k], v)
			}
		}
	}
	f(time.Minute, []float64{10, 1000, 5, 1}, map[string]float64{"EventsReceived": 10, "BytesSent": 1000, "FlushLatencyMax": 5})
	f(2*time.Minute, []float64{25, 1000, 7, 2}, map[string]float64{"EventsReceived": 15, "BytesSent": 0, "FlushLatencyMax": 7})
	f(3*time.Minute, []float64{25, 3000, 0, 2}, map[string]float64{"EventsReceived": 0, "BytesSent": 2000, "FlushLatencyMax": 0})
	// A counter never goes backwards on the line; NaN and Inf become 0.
	f(4*time.Minute, []float64{20, 3000, math.NaN(), math.Inf(1)}, map[string]float64{"EventsReceived": 0, "FlushLatencyMax": 0, "RingHighWaterPercent": 0})
	f(5*time.Minute, []float64{22, 3000, 1, 1}, map[string]float64{"EventsReceived": 2})
}

func TestEmitNoDimensions(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out)
	if err := e.Emit(t0, []float64{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	doc, err := emftest.Parse(out.Bytes())
	if err != nil {
		t.Fatalf("invalid EMF document: %v\n%s", err, out.String())
	}
	if len(doc.Dimensions) != 1 || len(doc.Dimensions[0]) != 0 {
		t.Fatalf("unexpected dimensions; got %v; want one empty DimensionSet", doc.Dimensions)
	}
}

func TestEmitEscapes(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out, Dimension{"FunctionName", "a\"b\\c\n\u2028<x>"})
	if err := e.Emit(t0, []float64{1, 2, 3, 4}, Property{"Note", "tab\there"}); err != nil {
		t.Fatal(err)
	}
	doc, err := emftest.Parse(out.Bytes())
	if err != nil {
		t.Fatalf("invalid EMF document: %v\n%s", err, out.String())
	}
	if doc.DimValues["FunctionName"] != "a\"b\\c\n\u2028<x>" {
		t.Fatalf("unexpected dimension value; got %q", doc.DimValues["FunctionName"])
	}
}

func TestDue(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out)
	f := func(at time.Duration, want bool) {
		t.Helper()
		if got := e.Due(t0.Add(at)); got != want {
			t.Fatalf("unexpected Due at %v; got %v; want %v", at, got, want)
		}
	}
	f(0, false)
	f(59*time.Second, false)
	f(time.Minute, true)
	if err := e.Emit(t0.Add(90*time.Second), []float64{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	f(91*time.Second, false)
	f(149*time.Second, false)
	f(150*time.Second, true)
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	many := make([]Def, MaxMetrics+1)
	for i := range many {
		many[i] = Def{Name: fmt.Sprint("M", i), Unit: Count}
	}
	dims := make([]Dimension, MaxDimensions+1)
	for i := range dims {
		dims[i] = Dimension{fmt.Sprint("D", i), "v"}
	}
	f := func(name string, o Options) {
		t.Helper()
		if _, err := New(&bytes.Buffer{}, o, t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: unexpected error; got %v; want ErrInvalid", name, err)
		}
	}
	one := []Def{{Name: "A", Unit: Count}}
	f("no namespace", Options{Metrics: one})
	f("no metrics", Options{Namespace: "N"})
	f("too many metrics", Options{Namespace: "N", Metrics: many})
	f("too many dimensions", Options{Namespace: "N", Metrics: one, Dimensions: dims})
	f("metric named like a dimension", Options{Namespace: "N", Metrics: one, Dimensions: []Dimension{{"A", "x"}}})
	f("repeated metric", Options{Namespace: "N", Metrics: []Def{{Name: "A"}, {Name: "A"}}})
	f("metric named _aws", Options{Namespace: "N", Metrics: []Def{{Name: "_aws"}}})
	f("empty dimension value", Options{Namespace: "N", Metrics: one, Dimensions: []Dimension{{"F", ""}}})
	f("long dimension value", Options{Namespace: "N", Metrics: one, Dimensions: []Dimension{{"F", strings.Repeat("x", MaxDimensionValue+1)}}})
	// Exactly the limits are fine.
	if _, err := New(&bytes.Buffer{}, Options{Namespace: "N", Metrics: many[:MaxMetrics], Dimensions: dims[:MaxDimensions]}, t0); err != nil {
		t.Fatalf("unexpected error at the limits: %v", err)
	}
}

func TestEmitRefusesBadCalls(t *testing.T) {
	var out bytes.Buffer
	e := newEmitter(t, &out, Dimension{"FunctionName", "f"})
	if err := e.Emit(t0, []float64{1}); err == nil {
		t.Fatal("unexpected success with too few values")
	}
	if err := e.Emit(t0, []float64{1, 2, 3, 4}, Property{"FunctionName", "x"}); err == nil {
		t.Fatal("unexpected success with a property named like a dimension")
	}
	if out.Len() != 0 {
		t.Fatalf("unexpected output after refused calls: %q", out.String())
	}
	failing := errWriter{}
	e2, err := New(failing, Options{Namespace: "N", Metrics: testDefs()}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Emit(t0, []float64{1, 2, 3, 4}); err == nil || !strings.Contains(err.Error(), "cannot write") {
		t.Fatalf("unexpected error from a failing writer; got %v", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

// TestParseRejects shows that the checker the tests rely on can fail.
func TestParseRejects(t *testing.T) {
	valid := `{"_aws":{"Timestamp":1767225600000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]},"F":"f","M":1}`
	if _, err := emftest.Parse([]byte(valid)); err != nil {
		t.Fatalf("unexpected error for a valid document: %v", err)
	}
	f := func(name, doc string) {
		t.Helper()
		if _, err := emftest.Parse([]byte(doc)); err == nil {
			t.Fatalf("%s: unexpected success for %s", name, doc)
		}
	}
	f("not JSON", `{"_aws":`)
	f("trailing data", valid+` x`)
	f("two lines", valid+"\n"+valid)
	f("no _aws", `{"F":"f","M":1}`)
	f("timestamp as string", strings.Replace(valid, `1767225600000`, `"1767225600000"`, 1))
	f("fractional timestamp", strings.Replace(valid, `1767225600000`, `1767225600000.5`, 1))
	f("no timestamp", strings.Replace(valid, `"Timestamp":1767225600000,`, ``, 1))
	f("empty directives", strings.Replace(valid, `[{"Namespace":"N","Dimensions":[["F"]],"Metrics":[{"Name":"M","Unit":"Count"}]}]`, `[]`, 1))
	f("no namespace", strings.Replace(valid, `"Namespace":"N",`, ``, 1))
	f("no dimension sets", strings.Replace(valid, `[["F"]]`, `[]`, 1))
	f("dimension missing from root", strings.Replace(valid, `"F":"f",`, ``, 1))
	f("dimension not a string", strings.Replace(valid, `"F":"f"`, `"F":1`, 1))
	f("metric missing from root", strings.Replace(valid, `,"M":1`, ``, 1))
	f("metric as string", strings.Replace(valid, `"M":1`, `"M":"1"`, 1))
	f("bad unit", strings.Replace(valid, `"Count"`, `"Things"`, 1))
	f("extra directive member", strings.Replace(valid, `"Namespace":"N"`, `"Namespace":"N","X":1`, 1))
	var defs, members []string
	for i := range 101 {
		defs = append(defs, fmt.Sprintf(`{"Name":"M%d"}`, i))
		members = append(members, fmt.Sprintf(`"M%d":1`, i))
	}
	f("101 metrics", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[`+
		strings.Join(defs, ",")+`]}]},`+strings.Join(members, ",")+`}`)
}
