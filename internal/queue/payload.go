package queue

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/monohook/monohook/internal/githubhook"
)

// Payloads are stored compressed with zstd: JSON shrinks four to ten
// times, and the bytes every commit writes and flushes (and the WAL copies
// into the database afterwards) are what bound how many deliveries a
// second one disk takes. Rows written before compression, which start
// with "{" or a form body's letters, are read as they are.
var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(2*githubhook.MaxBody))
	zstdMagic  = []byte{0x28, 0xB5, 0x2F, 0xFD}
)

// pack compresses a payload for storing. EncodeAll is safe for concurrent
// use, so each request compresses its own on its own goroutine.
func pack(payload []byte) []byte {
	return encoder.EncodeAll(payload, make([]byte, 0, len(payload)/4+64))
}

// unpack returns a stored payload as received.
func unpack(stored []byte) ([]byte, error) {
	if !bytes.HasPrefix(stored, zstdMagic) {
		return stored, nil
	}
	b, err := decoder.DecodeAll(stored, nil)
	if err != nil {
		return nil, fmt.Errorf("stored payload: %w", err)
	}
	return b, nil
}
