package protocol

import (
	"errors"
	"strings"
	"testing"
)

// TestNormalizeVersion is the golden table of the lenient normalisation
// (spec §6.1, docs/upgrades.md "Version order"): a row per rule.
func TestNormalizeVersion(t *testing.T) {
	for _, c := range []struct {
		in, want string // want "" = unparsable
	}{
		{"1.2.3", "v1.2.3"},
		{"v1.2.3", "v1.2.3"},
		{"V1.2.3", "v1.2.3"},
		{" 1.2.3 ", "v1.2.3"},
		{"1", "v1.0.0"},
		{"1.2", "v1.2.0"},
		{"01.002.0003", "v1.2.3"},
		{"1.0.0-rc.01", "v1.0.0-rc.1"},
		{"1.0.0-rc1", "v1.0.0-rc1"},
		{"1.0.0+build.7", "v1.0.0+build.7"},
		{"1.0.0-beta+exp.sha.5114f85", "v1.0.0-beta+exp.sha.5114f85"},
		{"2.14.03b", "v2.14.4-0.b"},
		{"2.14.03B", "v2.14.4-0.b"},
		{"2.14.09ab", "v2.14.10-0.ab"},
		{"2.14b", "v2.14.1-0.b"},
		{"2.99.9b", "v2.99.10-0.b"},
		{"1.2.999999999999999999999b", "v1.2.1000000000000000000000-0.b"},
		{"", ""},
		{"v", ""},
		{"abc", ""},
		{"1.2.3.4", ""},
		{"1..2", ""},
		{"1.2.x", ""},
		{"1.b.3", ""},
		{"2.14.03b-rc1", ""},
		{"1.2.3-", ""},
		{"1.2.3-a..b", ""},
		{"1.2.3+", ""},
		{"-1.2.3", ""},
		{"1.2.3_4", ""},
		{strings.Repeat("1", maxVersionLen+1), ""},
	} {
		got, err := NormalizeVersion(c.in)
		if c.want == "" {
			if !errors.Is(err, ErrVersionUnparsable) {
				t.Errorf("NormalizeVersion(%q) = %q, %v; want ErrVersionUnparsable", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NormalizeVersion(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestCompareVersions is the golden order table: each row's versions in
// strictly increasing order, every pair of a row compared both ways.
func TestCompareVersions(t *testing.T) {
	rows := [][]string{
		// SemVer 2.0 §11 example.
		{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"},
		// Lenient parts and numeric, not lexical, order.
		{"0.9", "1", "1.0.1", "1.2", "1.10", "v2.0.0"},
		// POS letter revisions: after the version, before the next
		// patch and its pre-releases.
		{"2.14.03", "2.14.03a", "2.14.03b", "2.14.03z", "2.14.03za", "2.14.4-rc.1", "2.14.04", "2.14.04a", "2.15"},
		// Unparsable versions are older than all parsable ones, and
		// ordered by their bytes among themselves.
		{"", "1.2.3.4", "banana", "0.0.0-0", "0.0.1"},
	}
	for _, row := range rows {
		for i := range row {
			for j := range row {
				want := 0
				switch {
				case i < j:
					want = -1
				case i > j:
					want = 1
				}
				got, _ := CompareVersions(row[i], row[j])
				if got != want {
					t.Errorf("CompareVersions(%q, %q) = %d, want %d", row[i], row[j], got, want)
				}
			}
		}
	}
	for _, eq := range [][2]string{
		{"1.2", "1.2.0"}, {"v01.2.3", "1.2.3"}, {"1.0.0+a", "1.0.0+b"}, {"2.14.03B", "2.14.3b"}, {"1.0.0-rc.01", "1.0.0-rc.1"},
	} {
		if c, err := CompareVersions(eq[0], eq[1]); c != 0 || err != nil {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want 0, nil", eq[0], eq[1], c, err)
		}
	}
	// The error names the version that does not parse; the order is
	// still given.
	c, err := CompareVersions("1.0.0", "bogus")
	if c != 1 || !errors.Is(err, ErrVersionUnparsable) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("CompareVersions(1.0.0, bogus) = %d, %v", c, err)
	}
}

// FuzzNormalizeVersion: never panics, and every key it returns
// normalises to itself (a key is a fixed point, so stored keys stay
// comparable).
func FuzzNormalizeVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "2.14.03b", "v1.0.0-rc.01+x", "", "1.2.3.4", "9b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeVersion(s)
		if err != nil {
			return
		}
		n2, err := NormalizeVersion(n)
		if err != nil || n2 != n {
			t.Fatalf("NormalizeVersion(%q) = %q; again = %q, %v", s, n, n2, err)
		}
	})
}
