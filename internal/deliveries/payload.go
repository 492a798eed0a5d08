package deliveries

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Payloads are stored compressed: JSON shrinks three to four times, and
// the bytes every commit writes and flushes (and the WAL copies into the
// database afterwards) bound how many deliveries a second one disk takes.
//
// S2 (a faster Snappy) rather than zstd: it runs on the request's
// goroutine, where zstd's fastest level cost a large share of an
// acknowledgement's CPU, and S2 a fraction of that for output a little
// larger (BENCHMARKS.md has the figures). A stored S2 payload starts with s2Tag, which no
// JSON or form body starts with. Rows written by earlier versions are zstd
// (its magic number) or as received ("{" or a form body's letters).
var (
	s2Tag     = []byte{0xff, 's', '2'}
	zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}
)

// packBuffers hold S2's worst case, so that what a queued delivery keeps is
// its compressed size, not that.
var packBuffers = sync.Pool{New: func() any { return new([]byte) }}

// pack compresses a payload for storing.
func pack(payload []byte) []byte {
	buf := packBuffers.Get().(*[]byte)
	defer packBuffers.Put(buf)
	if need := s2.MaxEncodedLen(len(payload)); cap(*buf) < need {
		*buf = make([]byte, need)
	}
	enc := s2.Encode((*buf)[:cap(*buf)], payload)
	out := make([]byte, len(s2Tag)+len(enc))
	copy(out, s2Tag)
	copy(out[len(s2Tag):], enc)
	return out
}

// unpacker reads stored payloads back. A payload decompressing to more
// than twice the largest accepted (a form body escapes its JSON) is a
// damaged row, refused before it is decompressed.
type unpacker struct {
	limit int
	// zstd reads rows of earlier versions: made at the first one met.
	zstdOnce sync.Once
	zstd     *zstd.Decoder
	zstdErr  error
}

// newUnpacker reads payloads of up to maxPayload bytes as received.
func newUnpacker(maxPayload int) *unpacker { return &unpacker{limit: 2 * maxPayload} }

// unpack returns a stored payload as received.
func (u *unpacker) unpack(stored []byte) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case bytes.HasPrefix(stored, s2Tag):
		stored = stored[len(s2Tag):]
		var n int
		if n, err = s2.DecodedLen(stored); err == nil && n > u.limit {
			err = fmt.Errorf("decoded length %d is too large", n)
		}
		if err == nil {
			b, err = s2.Decode(nil, stored)
		}
	case bytes.HasPrefix(stored, zstdMagic):
		u.zstdOnce.Do(func() {
			u.zstd, u.zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(uint64(max(u.limit, 1)))) //nolint:gosec // positive
		})
		if err = u.zstdErr; err == nil {
			b, err = u.zstd.DecodeAll(stored, nil)
		}
	default:
		return stored, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stored payload: %w", err)
	}
	return b, nil
}
