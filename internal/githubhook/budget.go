package githubhook

import (
	"errors"
	"sync/atomic"
)

// DefaultBodyMemory is the default size of a BodyBudget: far above what
// GitHub's traffic holds at once (its payloads are mostly a few KB), and
// room for ten of its largest.
const DefaultBodyMemory = 256 << 20

// errBudget: the body does not fit in the budget now; answered 503.
var errBudget = errors.New("request bodies in memory are at their budget")

// A BodyBudget bounds the bytes of request bodies held in memory at once,
// across every request that shares it. A body must be read whole before its
// signature can be checked, so without a bound anyone could make the
// process hold as many 25 MiB bodies as it has connections. Reservations
// never wait: a request that does not fit is refused at once (503 with
// Retry-After), so a flood cannot queue up behind it either.
type BodyBudget struct {
	limit int64
	held  atomic.Int64
}

// NewBodyBudget returns a budget of limit bytes. It should hold at least
// twice the handler's MaxBody (a body growing as it arrives holds its old
// buffer and the larger one while it is copied), or such bodies are always
// refused.
func NewBodyBudget(limit int64) *BodyBudget {
	return &BodyBudget{limit: limit}
}

// Limit is the budget's size in bytes.
func (b *BodyBudget) Limit() int64 { return b.limit }

// Held is the number of bytes reserved now.
func (b *BodyBudget) Held() int64 { return b.held.Load() }

// reserve takes n bytes if they fit. A nil budget always fits: the Lambda
// webhook has its whole event in memory before the handler runs, and
// serves one request at a time.
func (b *BodyBudget) reserve(n int64) bool {
	if b == nil || n == 0 {
		return true
	}
	for {
		held := b.held.Load()
		if held+n > b.limit {
			return false
		}
		if b.held.CompareAndSwap(held, held+n) {
			return true
		}
	}
}

// release gives back n reserved bytes.
func (b *BodyBudget) release(n int64) {
	if b != nil && n != 0 {
		b.held.Add(-n)
	}
}
