package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/monohook/monohook/internal/githubhook"
)

func newSend() *cobra.Command {
	var sec secretFlags
	var dataDir, target, event, delivery string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "send PAYLOAD.json --url URL",
		Short: "Sign a payload with the webhook secret and POST it the way GitHub does",
		Long: `send signs a payload (a file, or - for standard input) with the first configured
webhook secret and posts it with both signature headers (X-Hub-Signature-256
and X-Hub-Signature), X-GitHub-Event and a fresh X-GitHub-Delivery, then prints
the answer. It exits 1 unless the answer is 2xx. Use it to test a deployment
exactly as GitHub will call it.`,
		Example: `  monohook send push.json --url http://127.0.0.1:8080/webhook`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if target == "" {
				return withUsage(cmd, errors.New("--url is required"))
			}
			body, err := readInput(args[0])
			if err != nil {
				return err
			}
			secrets, _, err := sec.resolve(dataDir, false)
			if err != nil {
				return err
			}
			if delivery == "" {
				delivery = newDeliveryID()
			}
			sig256, sig1 := githubhook.Sign(secrets[0], body)
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("request: %w", err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "GitHub-Hookshot/monohook-send")
			req.Header.Set("X-GitHub-Event", event)
			req.Header.Set("X-GitHub-Delivery", delivery)
			req.Header.Set("X-Hub-Signature-256", sig256)
			req.Header.Set("X-Hub-Signature", sig1)
			resp, err := (&http.Client{Timeout: timeout}).Do(req)
			if err != nil {
				return fmt.Errorf("post: %w", err)
			}
			defer resp.Body.Close()
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			fmt.Fprintf(cmd.OutOrStdout(), "delivery %s: HTTP %s\n%s", printable(delivery), printable(resp.Status), printableLines(string(answer)))
			if resp.StatusCode/100 != 2 {
				return exitError(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", "", "webhook URL, e.g. http://127.0.0.1:8080/webhook")
	f.StringVar(&event, "event", "push", "X-GitHub-Event to send")
	f.StringVar(&delivery, "delivery", "", "X-GitHub-Delivery to send (default: a fresh random id)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	f.StringVar(&dataDir, "data-dir", "./monohook-data", "data directory holding the generated webhook secret")
	sec.register(f)
	// send reads the secrets serve uses and signs with the first; unlike
	// serve it never creates one.
	f.Lookup("secret").Usage = "webhook secret to sign with; of several comma-separated, the first (default: the " + secretFileName + " file serve generated in --data-dir)"
	f.Lookup("secret-file").Usage = "file holding the webhook secret(s), one per line or comma-separated; send signs with the first"
	return cmd
}

// newDeliveryID returns a random UUID (version 4), the form GitHub uses.
func newDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
