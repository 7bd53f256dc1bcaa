package upgrade

import "testing"

func TestVersionOrder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.2.3", "1.2.3", 0},
		{"v1.2.3", "1.2.3", 0},
		{"1.2", "1.2.0", 0},
		{"1", "1.0.0", 0},
		{"2.14.03", "2.14.3", 0},
		{"2.14.03", "2.14.10", -1}, // numbers, not strings: 3 < 10
		{"1.10.0", "1.9.0", 1},
		{"2.0.0-rc.1", "2.0.0", -1},
		{"2.0.0-alpha", "2.0.0-beta", -1},
		{"2.0.0-rc.2", "2.0.0-rc.10", -1},
		{"2.0.0+build.7", "2.0.0+build.8", 0}, // build metadata has no precedence
		{"V3", "2.99.99", 1},
	} {
		got, err := compareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "v", "2.14.03b", "1.2.3.4", "1..2", "x", "1.2.3-", "1.2.3-01", "-1"} {
		if _, err := normalizeVersion(bad); err == nil {
			t.Errorf("normalizeVersion(%q) accepted", bad)
		}
	}
}
