package lambdasim_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kte-dev/kinesis-telemetry-extension/lambdasim"
)

// An end-to-end run: the extension binary under test, a workload, shutdown,
// then an exactly-once check of what the extension acknowledged against
// what a sink (Kinesis, read back) holds.
func Example() {
	ctx := context.Background()
	s, err := lambdasim.New(lambdasim.Config{
		Extensions: []lambdasim.Extension{{Path: "build/host/kinesis-telemetry-extension"}},
		Env:        []string{"AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:4567", "KTE_STREAM=demo"},
		Timeout:    3 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Init(ctx); err != nil {
		log.Fatal(err)
	}
	for i := range 20 {
		res, err := s.Invoke(ctx, lambdasim.Invocation{
			Duration:  40 * time.Millisecond,
			LogLines:  100,
			LogFormat: lambdasim.LogFormat(i % 2), // text, then JSON
			LineSizes: []int{150, 2000, 64 << 10},
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Status, res.Overhead)
	}
	if _, err := s.Shutdown(ctx, "spindown", 2*time.Second); err != nil {
		log.Fatal(err)
	}
	st, _ := s.Subscriber("kinesis-telemetry-extension")
	var fromKinesis [][]byte // the records read back from the stream
	diff := lambdasim.Compare(s.Events(st.Acked), fromKinesis)
	fmt.Println(diff.OK(), len(st.Dropped), len(st.Pending))
	for _, p := range s.Processes() {
		fmt.Println(p.Name, p.FirstNext, p.PeakRSS)
	}
}
