// Command floorext is the smallest useful Go Lambda extension: it registers
// for INVOKE and SHUTDOWN and loops on /event/next until SHUTDOWN, with
// net/http and encoding/json as most Go extensions do. The cold-start
// harness measures it as the floor any Go extension pays.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floorext:", err)
		os.Exit(1)
	}
}

func run() error {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2020-01-01/extension"
	req, err := http.NewRequest(http.MethodPost, base+"/register", bytes.NewReader([]byte(`{"events":["INVOKE","SHUTDOWN"]}`)))
	if err != nil {
		return err
	}
	req.Header.Set("Lambda-Extension-Name", filepath.Base(os.Args[0]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot register: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cannot register: status %d", resp.StatusCode)
	}
	id := resp.Header.Get("Lambda-Extension-Identifier")
	for {
		req, err := http.NewRequest(http.MethodGet, base+"/event/next", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Lambda-Extension-Identifier", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("cannot get next event: %w", err)
		}
		var ev struct {
			EventType string `json:"eventType"`
		}
		err = json.NewDecoder(resp.Body).Decode(&ev)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("cannot get next event: status %d: %v", resp.StatusCode, err)
		}
		if ev.EventType == "SHUTDOWN" {
			return nil
		}
	}
}
