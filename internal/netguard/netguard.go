// Package netguard decides which addresses the outbound requests of
// targets may connect to, so that a rule (or a redirect it follows) cannot
// reach the cloud's metadata service or, unless allowed, the host's and
// the private network's services.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by every refusal.
var ErrRefused = errors.New("address refused")

var (
	// Never reachable: link-local addresses carry the metadata services
	// (169.254.169.254), and so do these, which hand out credentials: AWS's
	// IPv6 instance metadata and EKS Pod Identity agent (fd00:ec2::254,
	// fd00:ec2::23) and Alibaba Cloud's metadata service. None is anyone's
	// CI.
	metadata = []netip.Prefix{
		netip.MustParsePrefix("fd00:ec2::/32"),
		netip.MustParsePrefix("100.100.100.200/32"),
	}
	broadcast = netip.MustParseAddr("255.255.255.255")
	// Reachable with AllowPrivate: loopback and netip's IsPrivate (RFC
	// 1918, fc00::/7), and these.
	private = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),      // "this network"; 0.0.0.0 reaches the host
		netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
		netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated, still routed on some networks)
		netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64, whose IPv4 address is not at a fixed place
	}
	// IPv6 addresses that translate to an IPv4 address (NAT64) are judged
	// by that address.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
)

// unwrap is the IPv4 address an IPv4-mapped or NAT64 IPv6 address stands
// for, or ip itself.
func unwrap(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return ip
}

// Always refuses the addresses no flag allows: link-local (with the
// metadata services), unspecified, multicast and broadcast.
func Always(ip netip.Addr) error {
	ip = unwrap(ip)
	var why string
	switch {
	case ip.IsLinkLocalUnicast() || inAny(metadata, ip):
		why = "link-local and metadata addresses are never allowed"
	case ip.IsUnspecified():
		why = "the unspecified address is never allowed"
	case ip.IsMulticast() || ip == broadcast:
		why = "multicast and broadcast addresses are never allowed"
	default:
		return nil
	}
	return fmt.Errorf("%s: %s (%w)", ip, why, ErrRefused)
}

// Policy is what, beyond the public internet, targets may connect to.
type Policy struct {
	// AllowPrivate allows loopback, private (RFC 1918, fc00::/7),
	// carrier-grade NAT (100.64.0.0/10) and 0.0.0.0/8 addresses.
	AllowPrivate bool
	// Allow lists networks allowed even when AllowPrivate is off.
	Allow []netip.Prefix
}

// Check refuses ip unless the policy lets targets connect to it.
func (p Policy) Check(ip netip.Addr) error {
	ip = unwrap(ip)
	if err := Always(ip); err != nil {
		return err
	}
	if p.AllowPrivate || !isPrivate(ip) {
		return nil
	}
	for _, n := range p.Allow {
		if n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%s: loopback and private addresses need --http-allow-private or --http-allow-cidr (%w)", ip, ErrRefused)
}

func isPrivate(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsPrivate() {
		return true
	}
	for _, n := range private {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Control is a net.Dialer's Control: it checks the address actually
// dialled, after DNS, for every connection (redirects included).
func (p Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%s: %w (%w)", address, err, ErrRefused)
	}
	return p.Check(ap.Addr())
}

func inAny(nets []netip.Prefix, ip netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads a comma-separated list of networks (CIDRs, or bare
// addresses for one host each), as the flags that name networks take them
// (--webhook-allow-cidr, --http-allow-cidr); "" is none. IPv4-mapped
// networks are kept unmapped, as addresses are compared.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var nets []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 192.30.252.0/22 or an address: %w", s, err)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		nets = append(nets, p.Masked())
	}
	return nets, nil
}
