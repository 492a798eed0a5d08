package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"gocloud.dev/blob"

	"github.com/monohook/monohook/internal/trigger"
)

// Webhook serves API Gateway events with the same http.Handler as serve:
// HTTP API (payload 2.0) and REST proxy (1.0) events, base64 bodies
// included.
type Webhook struct {
	v1 *httpadapter.HandlerAdapter
	v2 *httpadapter.HandlerAdapterV2
}

// NewWebhook wraps h.
func NewWebhook(h http.Handler) *Webhook {
	return &Webhook{v1: httpadapter.New(h), v2: httpadapter.NewV2(h)}
}

// Handle tells the two payload versions apart by their "version" field.
func (w *Webhook) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("API Gateway event: %w", err)
	}
	if probe.Version == "2.0" {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("API Gateway HTTP API event: %w", err)
		}
		return w.v2.ProxyWithContext(ctx, ev)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("API Gateway REST event: %w", err)
	}
	return w.v1.ProxyWithContext(ctx, ev)
}

// EvalEvent is what the webhook function sends the eval function: the
// parsed push, or, when that is larger than an asynchronous invocation
// takes, the key where it was parked in the bucket.
type EvalEvent struct {
	Push      *trigger.Push `json:"push,omitempty"`
	ParkedKey string        `json:"parked_key,omitempty"`
}

// maxAsyncPayload stays under Lambda's limit for an asynchronous
// invocation's payload, with room for the envelope. The limit is 1 MB
// since October 2025 (256 KB before); read as 1,000,000 bytes, the smaller
// of what "1 MB" may mean. Only pushes larger than this are parked.
const maxAsyncPayload = 960 << 10

// ParkedPrefix is where pushes too large to pass are kept for the eval
// function; it is apart from the rules' prefix.
const ParkedPrefix = "monohook/parked/"

// Invoker accepts deliveries by invoking the eval function asynchronously.
// An invocation that fails is an error, which the handler answers with a
// 503, so GitHub records the delivery as failed rather than delivered.
type Invoker struct {
	Client   *awslambda.Client
	Function string       // the eval function's name or ARN
	Bucket   *blob.Bucket // where large pushes are parked
	Log      *slog.Logger
}

// Accept implements githubhook.Acceptor.
func (i *Invoker) Accept(ctx context.Context, d trigger.Delivery) error {
	body, err := json.Marshal(EvalEvent{Push: d.Push})
	if err != nil {
		return fmt.Errorf("encode push: %w", err)
	}
	if len(body) > maxAsyncPayload {
		key := ParkedPrefix + d.ID + ".json"
		push, err := json.Marshal(d.Push)
		if err != nil {
			return fmt.Errorf("encode push: %w", err)
		}
		if err := i.Bucket.WriteAll(ctx, key, push, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
			return fmt.Errorf("park push %s: %w", d.ID, err)
		}
		if body, err = json.Marshal(EvalEvent{ParkedKey: key}); err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		i.Log.Info("push parked in the bucket: too large to pass", "delivery", d.ID, "key", key, "bytes", len(push))
	}
	out, err := i.Client.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName:   aws.String(i.Function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        body,
	})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", i.Function, err)
	}
	if out.StatusCode != http.StatusAccepted {
		return fmt.Errorf("invoke %s: status %d", i.Function, out.StatusCode)
	}
	return nil
}

// Eval is the eval function: it evaluates a push and starts its pipelines.
type Eval struct {
	Service *trigger.Service
	Bucket  *blob.Bucket // where parked pushes are read
	Log     *slog.Logger
	// Checks, when set, posts the push's checks to GitHub after its
	// starts (Service.Report must be set too).
	Checks *Checks
}

// ErrStartsFailed is returned when a start failed, so that Lambda retries
// the event (starts are idempotent by token) and, past its retries, sends
// it to the dead-letter queue.
var ErrStartsFailed = errors.New("some pipeline starts failed")

// Handle evaluates one event.
func (e *Eval) Handle(ctx context.Context, ev EvalEvent) error {
	push := ev.Push
	if ev.ParkedKey != "" {
		b, err := e.Bucket.ReadAll(ctx, ev.ParkedKey)
		if err != nil {
			return fmt.Errorf("read parked push %s: %w", ev.ParkedKey, err)
		}
		push = &trigger.Push{}
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(push); err != nil {
			return fmt.Errorf("parked push %s: %w", ev.ParkedKey, err)
		}
	}
	if push == nil {
		return errors.New("event has neither push nor parked_key")
	}
	out, err := e.Service.Process(ctx, push)
	if err != nil {
		return err
	}
	if e.Checks != nil {
		e.postChecks(ctx, push, out)
	}
	for _, s := range out.Starts {
		if s.Error != "" {
			return fmt.Errorf("%w: %s: %s", ErrStartsFailed, s.Pipeline, s.Error)
		}
	}
	if ev.ParkedKey != "" {
		if err := e.Bucket.Delete(ctx, ev.ParkedKey); err != nil {
			e.Log.Warn("could not delete a parked push", "key", ev.ParkedKey, "err", err)
		}
	}
	return nil
}
