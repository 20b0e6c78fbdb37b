// Command gogen is the open-loop load generator for many uploads per second: the same plan as
// loadtests/openloop.py, sent from compiled code so that one process can offer 10x the API's sustainable rate on
// the machine it shares with the server (the Python generator saturates a core at a few hundred uploads/s).
//
// It sends what loadtests/gogen.py planned and records what came back; it decides nothing itself (the bodies,
// the headers and their signatures, the schedule and the classification of answers are made in Python).
//
// Plan (stdin or -plan): line 1 is a JSON object
//
//	{"addr": "127.0.0.1:8080", "path": "/v1/registrations", "photos": ["a.jpg", ...], "tail": "<b64>",
//	 "timeout_s": 30, "max_outstanding": 2000, "expect": false}
//
// then one JSON object per request, in due order:
//
//	{"due": 0.01, "head": "<b64: the body's bytes before the photo>", "photo": 0, "label": "500k",
//	 "headers": [["Content-Type", "..."], ...]}
//
// Each request is sent at start+due on a connection of its own (as each applicant's browser opens its own), its
// latency counted from the time it was due. A request due while max_outstanding are open is not sent
// ("client_saturated"). Without expect, head and body are written while the answer is read, so an answer that
// comes before the whole body (a shed upload) is read even if the server then resets the connection; with
// expect, the body follows only a "100 Continue".
//
// Output (-out): CSV with a header row; columns start (unix s, when due), latency_ms, status (0: none),
// error ("", "client_timeout", "client_saturated", or "transport_error"), label, bytes, answer (base64 of the
// answer's first 4 KiB when the status is not 2xx). Stdout: one summary line, "client lateness p99 <x> ms".
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const answerKeep = 4096

type header struct {
	Addr           string   `json:"addr"`
	Path           string   `json:"path"`
	Photos         []string `json:"photos"`
	Tail           []byte   `json:"tail"`
	TimeoutS       float64  `json:"timeout_s"`
	MaxOutstanding int      `json:"max_outstanding"`
	Expect         bool     `json:"expect"`
}

type request struct {
	Due     float64     `json:"due"`
	Head    []byte      `json:"head"`
	Photo   int         `json:"photo"`
	Label   string      `json:"label"`
	Headers [][2]string `json:"headers"`
}

type result struct {
	start     float64
	latencyMs float64
	status    int
	err       string
	label     string
	bytes     int
	answer    []byte
}

func main() {
	planPath := flag.String("plan", "-", "plan file (- for stdin)")
	outPath := flag.String("out", "", "results CSV")
	flag.Parse()
	if *outPath == "" {
		fail("-out is required")
	}
	in := os.Stdin
	if *planPath != "-" {
		f, err := os.Open(*planPath)
		if err != nil {
			fail(err.Error())
		}
		defer f.Close()
		in = f
	}
	hdr, reqs, err := readPlan(in)
	if err != nil {
		fail("plan: " + err.Error())
	}
	photos := make([][]byte, len(hdr.Photos))
	for i, p := range hdr.Photos {
		if photos[i], err = os.ReadFile(p); err != nil {
			fail(err.Error())
		}
	}
	for _, r := range reqs {
		if r.Photo < 0 || r.Photo >= len(photos) {
			fail(fmt.Sprintf("plan: photo %d out of range", r.Photo))
		}
	}
	results, late := run(hdr, reqs, photos)
	if err := writeResults(*outPath, results); err != nil {
		fail(err.Error())
	}
	fmt.Printf("planned %d, sent %d, client lateness p99 %.1f ms\n", len(reqs), sent(results), p99(late))
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "gogen:", msg)
	os.Exit(2)
}

func readPlan(in io.Reader) (header, []request, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(in, 1<<20))
	var hdr header
	if err := dec.Decode(&hdr); err != nil {
		return hdr, nil, err
	}
	if hdr.Addr == "" || hdr.Path == "" || hdr.TimeoutS <= 0 || hdr.MaxOutstanding <= 0 {
		return hdr, nil, errors.New("addr, path, timeout_s and max_outstanding are required")
	}
	host, _, err := net.SplitHostPort(hdr.Addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		return hdr, nil, fmt.Errorf("open-loop traffic goes to loopback only, not %q", hdr.Addr)
	}
	var reqs []request
	for {
		var r request
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			return hdr, nil, err
		}
		reqs = append(reqs, r)
	}
	return hdr, reqs, nil
}

// run sends every request at its due time; it returns one result per request and how late each launch was (ms).
func run(hdr header, reqs []request, photos [][]byte) ([]result, []float64) {
	timeout := time.Duration(hdr.TimeoutS * float64(time.Second))
	results := make([]result, len(reqs))
	late := make([]float64, 0, len(reqs))
	slots := make(chan struct{}, hdr.MaxOutstanding)
	var wg sync.WaitGroup
	t0 := time.Now().Add(50 * time.Millisecond)
	wall0 := float64(t0.UnixNano()) / 1e9
	for i := range reqs {
		r := &reqs[i]
		due := t0.Add(time.Duration(r.Due * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		late = append(late, float64(time.Since(due))/float64(time.Millisecond))
		size := len(r.Head) + len(photos[r.Photo]) + len(hdr.Tail)
		results[i] = result{start: wall0 + r.Due, label: r.Label, bytes: size}
		select {
		case slots <- struct{}{}:
		default:
			results[i].err = "client_saturated"
			continue
		}
		wg.Add(1)
		go func(res *result) {
			defer wg.Done()
			defer func() { <-slots }()
			res.status, res.answer, res.err = send(hdr, r, photos[r.Photo], size, due.Add(timeout))
			res.latencyMs = float64(time.Since(due)) / float64(time.Millisecond)
		}(&results[i])
	}
	wg.Wait()
	return results, late
}

// send makes one upload on a new connection; it returns the final status (0 when there was none), the answer's
// first bytes when it is not 2xx, and the error kind.
func send(hdr header, r *request, photo []byte, size int, deadline time.Time) (int, []byte, string) {
	conn, err := net.DialTimeout("tcp", hdr.Addr, time.Until(deadline))
	if err != nil {
		return 0, nil, errKind(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", hdr.Path, hdr.Addr, size)
	for _, h := range r.Headers {
		fmt.Fprintf(&head, "%s: %s\r\n", h[0], h[1])
	}
	if hdr.Expect {
		head.WriteString("Expect: 100-continue\r\n")
	}
	head.WriteString("\r\n")
	body := net.Buffers{r.Head, photo, hdr.Tail}
	br := bufio.NewReader(conn)
	if hdr.Expect {
		if _, err := io.WriteString(conn, head.String()); err != nil {
			return 0, nil, errKind(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, nil, errKind(err)
		}
		if resp.StatusCode != http.StatusContinue {
			return answer(resp)
		}
		go func() { _, _ = body.WriteTo(conn) }() // a write error shows as the read's error or its answer
	} else {
		all := append(net.Buffers{[]byte(head.String())}, body...)
		go func() { _, _ = all.WriteTo(conn) }()
	}
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode == http.StatusContinue { // an unasked 100 is skipped (RFC 9110 15.2)
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		return 0, nil, errKind(err)
	}
	return answer(resp)
}

func answer(resp *http.Response) (int, []byte, string) {
	defer resp.Body.Close()
	kept, err := io.ReadAll(io.LimitReader(resp.Body, answerKeep))
	if err != nil && resp.StatusCode >= 300 && len(kept) == 0 {
		return resp.StatusCode, nil, errKind(err)
	}
	if resp.StatusCode < 300 {
		kept = nil
	}
	return resp.StatusCode, kept, ""
}

func errKind(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "client_timeout"
	}
	return "transport_error"
}

func writeResults(path string, results []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(bufio.NewWriter(f))
	_ = w.Write([]string{"start", "latency_ms", "status", "error", "label", "bytes", "answer"})
	for _, r := range results {
		_ = w.Write([]string{
			strconv.FormatFloat(r.start, 'f', 6, 64), strconv.FormatFloat(r.latencyMs, 'f', 3, 64),
			strconv.Itoa(r.status), r.err, r.label, strconv.Itoa(r.bytes), base64.StdEncoding.EncodeToString(r.answer),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sent(results []result) int {
	n := 0
	for _, r := range results {
		if r.err != "client_saturated" {
			n++
		}
	}
	return n
}

// p99 is the 99th percentile by the nearest-rank method, as loadtests/outcomes.py computes it.
func p99(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(0.99 * float64(len(s))))
	return s[max(rank, 1)-1]
}
