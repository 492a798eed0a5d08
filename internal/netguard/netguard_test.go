package netguard

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	const (
		public  = iota // allowed
		private        // allowed with AllowPrivate
		never          // refused always
	)
	for addr, want := range map[string]int{
		"8.8.8.8": public, "2001:4860:4860::8888": public, "100.128.0.1": public, "::ffff:8.8.8.8": public,
		"127.0.0.1": private, "127.9.9.9": private, "::1": private, "::ffff:127.0.0.1": private,
		"10.1.2.3": private, "172.16.0.1": private, "192.168.1.1": private, "100.64.0.1": private,
		"0.1.2.3": private, "fc00::1": private, "fd12:3456::1": private, "::ffff:10.0.0.1": private,
		"64:ff9b::7f00:1": private, "fec0::1": private, "64:ff9b:1::a00:1": private,
		"169.254.169.254": never, "169.254.0.1": never, "fe80::1": never, "fd00:ec2::254": never, "fd00:ec2::23": never, "100.100.100.200": never,
		"::ffff:169.254.169.254": never, "64:ff9b::a9fe:a9fe": never,
		"0.0.0.0": never, "::": never, "224.0.0.1": never, "ff02::1": never, "255.255.255.255": never,
	} {
		ip := netip.MustParseAddr(addr)
		strict := (Policy{}).Check(ip)
		loose := (Policy{AllowPrivate: true}).Check(ip)
		// An allow-list that names the address lets private ones through,
		// never the others.
		listed := (Policy{Allow: []netip.Prefix{netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()), netip.PrefixFrom(ip, ip.BitLen())}}).Check(ip)
		got := public
		switch {
		case loose != nil:
			got = never
		case strict != nil:
			got = private
		}
		if got != want {
			t.Errorf("%s: class %d, want %d (%v, %v)", addr, got, want, strict, loose)
		}
		if want == private && listed != nil && !netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
			t.Errorf("%s: refused although listed: %v", addr, listed)
		}
		for _, err := range []error{strict, loose, listed} {
			if err != nil && !errors.Is(err, ErrRefused) {
				t.Errorf("%s: %v does not wrap ErrRefused", addr, err)
			}
		}
		if want == never && listed == nil {
			t.Errorf("%s: allowed by an allow-list", addr)
		}
	}
}

func TestControlChecksTheDialledAddress(t *testing.T) {
	p := Policy{}
	if err := p.Control("tcp4", "127.0.0.1:80", nil); err == nil {
		t.Error("127.0.0.1:80 allowed")
	}
	if err := p.Control("tcp6", "[::ffff:169.254.169.254]:80", nil); err == nil {
		t.Error("mapped metadata address allowed")
	}
	if err := p.Control("tcp4", "93.184.215.14:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

func TestParsePrefixes(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/8/1"} {
		if _, err := ParsePrefixes(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParsePrefixes(%q) = %v", bad, err)
		}
	}
	if nets, err := ParsePrefixes(" , "); err != nil || len(nets) != 0 {
		t.Errorf("empty list: %v %v", nets, err)
	}
}

func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"192.30.252.0/22,2606:50c0::/32", " 127.0.0.1 , ::1", "10.0.0.1/8", ",", "::ffff:1.2.3.4", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		nets, err := ParsePrefixes(list)
		if err != nil {
			return
		}
		// What is accepted is valid, masked, and reads back the same.
		var back []string
		for _, n := range nets {
			if !n.IsValid() || n != n.Masked() {
				t.Fatalf("ParsePrefixes(%q): %v", list, n)
			}
			back = append(back, n.String())
		}
		again, err := ParsePrefixes(strings.Join(back, ","))
		if err != nil || !slices.Equal(again, nets) {
			t.Fatalf("ParsePrefixes(%q) = %v; read back %v, %v", list, nets, again, err)
		}
	})
}
