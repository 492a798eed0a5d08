package deliveries

import (
	"bytes"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// testUnpacker reads payloads of up to GitHub's largest (25 MiB).
var testUnpacker = newUnpacker(25 << 20)

func TestPayloadRoundTrip(t *testing.T) {
	big, err := os.ReadFile("../../testdata/bench/push-200k.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{[]byte(`{"ref":"refs/heads/main"}`), []byte("payload=%7B%7D"), {}, big} {
		stored := pack(p)
		if !bytes.HasPrefix(stored, s2Tag) {
			t.Fatalf("stored payload does not start with the S2 tag: % x", stored[:4])
		}
		if len(p) > 1000 && len(stored) >= len(p)/2 {
			t.Errorf("%d bytes stored as %d: not compressed", len(p), len(stored))
		}
		got, err := testUnpacker.unpack(stored)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("testUnpacker.unpack(pack(%d bytes)) = %d bytes, %v", len(p), len(got), err)
		}
	}
}

// Rows written by earlier versions: zstd-compressed, or as received.
func TestPayloadEarlierRows(t *testing.T) {
	p := []byte(`{"ref":"refs/heads/main","commits":[]}`)
	enc, _ := zstd.NewWriter(nil)
	for name, stored := range map[string][]byte{"zstd": enc.EncodeAll(p, nil), "plain": p} {
		got, err := testUnpacker.unpack(stored)
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("%s row: %q, %v", name, got, err)
		}
	}
	form := []byte("payload=%7B%7D")
	if got, err := testUnpacker.unpack(form); err != nil || !bytes.Equal(got, form) {
		t.Errorf("form row: %q, %v", got, err)
	}
}

func TestPayloadCorrupt(t *testing.T) {
	stored := pack(bytes.Repeat([]byte("abcdefgh"), 100))
	for name, b := range map[string][]byte{
		"truncated": stored[:len(stored)/2],
		"tag only":  s2Tag,
		"huge":      append(append([]byte{}, s2Tag...), 0xff, 0xff, 0xff, 0xff, 0x7f),
	} {
		if _, err := testUnpacker.unpack(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
