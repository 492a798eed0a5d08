// Command pushstart measures push to start: how long after a signed push
// is sent to `monohook serve` its pipeline's StartPipelineExecution
// arrives. It is the CodePipeline endpoint itself (point serve at it with
// AWS_ENDPOINT_URL_CODEPIPELINE), answers every start at once and records
// when each arrived, and it sends pushes at a fixed rate (open loop: a
// slow answer does not slow the sending), each changing one file of
// services/svcN for N = 0…rules-1, as scripts/loadtest.sh's rules expect.
// It prints the distribution of push to start and of the acknowledgement.
//
//	go run ./scripts/pushstart -listen 127.0.0.1:PORT -target http://127.0.0.1:SERVE -secret S [-rate 300] [-for 10s]
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/monohook/monohook/internal/trigger"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of the CodePipeline endpoint")
	target := flag.String("target", "", "URL of monohook serve")
	secret := flag.String("secret", "", "webhook secret")
	rate := flag.Float64("rate", 300, "pushes per second")
	dur := flag.Duration("for", 10*time.Second, "how long to send")
	rules := flag.Int("rules", 200, "pipelines pipeline-svc0… to spread pushes over")
	flag.Parse()
	if err := run(*listen, *target, *secret, *rate, *dur, *rules); err != nil {
		fmt.Fprintln(os.Stderr, "pushstart:", err)
		os.Exit(1)
	}
}

// fake is the CodePipeline endpoint: the arrival of each token's first start.
type fake struct {
	mu      sync.Mutex
	arrived map[string]time.Time
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var in struct {
		Name  string `json:"name"`
		Token string `json:"clientRequestToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	if _, ok := f.arrived[in.Token]; !ok {
		f.arrived[in.Token] = now
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]string{"pipelineExecutionId": "exec-" + in.Token})
}

type sent struct {
	token   string
	at, ack time.Time
	failed  error
}

func run(listen, target, secret string, rate float64, dur time.Duration, rules int) error {
	if target == "" || secret == "" {
		return errors.New("-target and -secret are required")
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	f := &fake{arrived: map[string]time.Time{}}
	go http.Serve(ln, f) //nolint:errcheck,gosec // ends with the process
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	if err := waitUp(client, target); err != nil {
		return err
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	n := int(rate * dur.Seconds())
	pushes := make([]sent, n)
	every := time.Duration(float64(time.Second) / rate)
	began := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		time.Sleep(time.Until(began.Add(time.Duration(i) * every)))
		id := fmt.Sprintf("pushstart-%s-%d", run, i)
		pipeline := fmt.Sprintf("pipeline-svc%d", i%rules)
		body := payload(i, i%rules)
		pushes[i].token = trigger.StartToken(id, 0, pipeline)
		wg.Add(1)
		go func(p *sent) {
			defer wg.Done()
			p.at = time.Now()
			p.failed = push(client, target, secret, id, body)
			p.ack = time.Now()
		}(&pushes[i])
	}
	wg.Wait()
	// Starts still on their way: wait until every token arrived, or 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		got := len(f.arrived)
		f.mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var toStart, toAck []time.Duration
	failed := 0
	f.mu.Lock()
	for _, p := range pushes {
		if p.failed != nil {
			failed++
			continue
		}
		toAck = append(toAck, p.ack.Sub(p.at))
		if at, ok := f.arrived[p.token]; ok {
			toStart = append(toStart, at.Sub(p.at))
		}
	}
	f.mu.Unlock()
	fmt.Printf("== %d pushes at %g/s over %s: %d failed, %d started\n", n, rate, dur, failed, len(toStart))
	fmt.Printf("   push to StartPipelineExecution (ms): %s\n", percentiles(toStart))
	fmt.Printf("   push to acknowledgement (ms):        %s\n", percentiles(toAck))
	if len(toStart) < n-failed {
		return fmt.Errorf("%d acknowledged pushes never reached their pipeline", n-failed-len(toStart))
	}
	return nil
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000 }
	return fmt.Sprintf("p50 %.1f, p90 %.1f, p99 %.1f, max %.1f", at(0.5), at(0.9), at(0.99), at(1))
}

func waitUp(client *http.Client, target string) error {
	for range 200 {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, target+"/healthz", nil)
		if err != nil {
			return err
		}
		if r, err := client.Do(req); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", target)
}

// payload is push i, changing one file of services/svcN.
func payload(i, svc int) []byte {
	sha := fmt.Sprintf("%040x", i+1)
	file := fmt.Sprintf("services/svc%d/main.go", svc)
	commit := map[string]any{
		"id": sha, "tree_id": sha, "distinct": true, "message": "change", "timestamp": "2026-01-01T00:00:00Z",
		"url":    "https://github.com/acme-corp/monorepo/commit/" + sha,
		"author": map[string]string{"name": "a", "email": "a@example.com"}, "committer": map[string]string{"name": "a", "email": "a@example.com"},
		"added": []string{}, "removed": []string{}, "modified": []string{file},
	}
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": fmt.Sprintf("%040x", i), "after": sha,
		"repository": map[string]any{"id": 1, "name": "monorepo", "full_name": "acme-corp/monorepo", "owner": map[string]any{"login": "acme-corp", "name": "acme-corp"}},
		"pusher":     map[string]string{"name": "a", "email": "a@example.com"},
		"created":    false, "deleted": false, "forced": false,
		"commits": []any{commit}, "head_commit": commit,
	})
	return b
}

func push(client *http.Client, target, secret, id string, body []byte) error {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("push %s: %s", id, resp.Status)
	}
	return nil
}
