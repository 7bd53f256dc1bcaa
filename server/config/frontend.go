package config

import (
	"fmt"
	"net/netip"
)

// validateFrontEnd checks the [server] keys of the pre-HELLO defences and
// the PROXY protocol.
func (c *Config) validateFrontEnd(add func(string, ...any)) {
	s := &c.Server
	if s.MaxPendingHello < 1 {
		add("server.max_pending_hello must be at least 1, got %d", s.MaxPendingHello)
	}
	if s.MaxPendingPerSource < 0 {
		add("server.max_pending_per_source must be 0 (no limit) or positive, got %d", s.MaxPendingPerSource)
	}
	if s.HelloRatePerSource < 0 {
		add("server.hello_rate_per_source must be 0 (no limit) or positive, got %v", s.HelloRatePerSource)
	}
	if s.HelloRatePerSource > 0 && s.HelloBurstPerSource < 1 {
		add("server.hello_burst_per_source must be at least 1, got %d", s.HelloBurstPerSource)
	}
	if _, err := ParsePrefixes(s.SourceLimitExempt); err != nil {
		add("server.source_limit_exempt: %v", err)
	}
	if _, err := ParsePrefixes(s.ProxyTrusted); err != nil {
		add("server.proxy_trusted: %v", err)
	}
}

// ParsePrefixes parses CIDRs ("10.0.0.0/8"); a bare address is its own
// /32 or /128.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, v := range list {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an address", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// normalizeLists makes an empty list in the file the same as none: both
// mean "no CIDRs".
func (c *Config) normalizeLists() {
	if len(c.Server.SourceLimitExempt) == 0 {
		c.Server.SourceLimitExempt = nil
	}
	if len(c.Server.ProxyTrusted) == 0 {
		c.Server.ProxyTrusted = nil
	}
}
