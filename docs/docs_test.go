package docs_test

// The documents are part of the product: a firmware engineer reads
// protocol.md without leaving the repository, and an operator follows
// links between the guides. This test fails on a link to a file that does
// not exist, on an #anchor that names no heading, and on any mention of
// text outside the repository (the original TGP/1 draft and its
// directory), so a reference cannot silently go stale.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// docFiles are the Markdown files checked: every docs/*.md and the README.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md found")
	}
	return append(files, filepath.Join("..", "README.md"))
}

// outside are strings no document may contain: names of texts that are
// not in the repository.
// The names are spelled in pieces so that a search of the docs for them
// finds none here.
var outside = []string{"protocol-v1" + ".md", "protocol-changes" + ".md", ".." + "/shared", "/work" + "/shared"}

// linkRE matches an inline Markdown link or image: [text](target) with an
// optional "title". Reference-style links are not used in these docs.
var linkRE = regexp.MustCompile(`!?\[([^\]]*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// sectionTextRE finds the section number a link's text names: "§6.3" or
// "protocol.md §6.3".
var sectionTextRE = regexp.MustCompile(`§(\d+(?:\.\d+)*)$`)

// codeSpanRE matches inline code, whose text is not a link.
var codeSpanRE = regexp.MustCompile("`[^`]*`")

type doc struct {
	lines   []string // outside fenced code blocks, code spans removed
	raw     string
	anchors map[string]bool
}

func readDoc(t *testing.T, path string) *doc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := &doc{raw: string(b), anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(strings.NewReader(d.raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trim, fence) {
				fence = ""
			}
			d.lines = append(d.lines, "")
			continue
		}
		if strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~") {
			fence = trim[:3]
			d.lines = append(d.lines, "")
			continue
		}
		if h, ok := heading(line); ok {
			slug := Slug(h)
			if n := seen[slug]; n > 0 {
				d.anchors[fmt.Sprintf("%s-%d", slug, n)] = true
			} else {
				d.anchors[slug] = true
			}
			seen[slug]++
		}
		d.lines = append(d.lines, codeSpanRE.ReplaceAllString(line, ""))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// heading returns the text of an ATX heading line ("## 6. Keys").
func heading(line string) (string, bool) {
	if !strings.HasPrefix(line, "#") {
		return "", false
	}
	t := strings.TrimLeft(line, "#")
	if len(line)-len(t) > 6 || !strings.HasPrefix(t, " ") {
		return "", false
	}
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(t), "#")), true
}

// Slug is the anchor GitHub (and most renderers) give a heading:
// lower case, inline-code backticks and other punctuation dropped
// (letters, digits, marks, '_' and '-' kept), each space a hyphen.
func Slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"6. Keys, HELLO and HELLO_OK":                "6-keys-hello-and-hello_ok",
		"10.1 Continuing the session from §9":        "101-continuing-the-session-from-9",
		"9.4 HEARTBEAT `[0]` (terminal → server, n)": "94-heartbeat-0-terminal--server-n",
	} {
		if got := Slug(h); got != want {
			t.Errorf("Slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// TestLinksResolve checks every link in every document: a file must
// exist (relative to the document), an #anchor must name a heading of
// the target document.
func TestLinksResolve(t *testing.T) {
	docs := map[string]*doc{}
	get := func(path string) *doc {
		path = filepath.Clean(path)
		if d, ok := docs[path]; ok {
			return d
		}
		d := readDoc(t, path)
		docs[path] = d
		return d
	}
	checked := 0
	for _, file := range docFiles(t) {
		d := get(file)
		for i, line := range d.lines {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				text, target := m[1], m[2]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				where := fmt.Sprintf("%s:%d: link %q", file, i+1, target)
				path, anchor, _ := strings.Cut(target, "#")
				var td *doc
				if path == "" {
					td = d
				} else {
					full := filepath.Join(filepath.Dir(file), path)
					st, err := os.Stat(full)
					if err != nil {
						t.Errorf("%s: %v", where, err)
						continue
					}
					if anchor == "" {
						continue
					}
					if st.IsDir() || !strings.HasSuffix(full, ".md") {
						t.Errorf("%s: an anchor into a file that is not Markdown", where)
						continue
					}
					td = get(full)
				}
				if anchor != "" && !td.anchors[anchor] {
					t.Errorf("%s: no heading has the anchor #%s", where, anchor)
				}
				// A link that says "§6.3" must lead to section 6.3: the
				// anchor of "6.3 Title" starts with "63-".
				if sm := sectionTextRE.FindStringSubmatch(text); sm != nil && anchor != "" {
					if want := strings.ReplaceAll(sm[1], ".", "") + "-"; !strings.HasPrefix(anchor, want) {
						t.Errorf("%s: the text says §%s but the anchor is another section", where, sm[1])
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d links checked: the link pattern is broken", checked)
	}
}

// TestSelfContained fails on any mention of a text outside the
// repository: the documents must stand on their own.
func TestSelfContained(t *testing.T) {
	for _, file := range docFiles(t) {
		d := readDoc(t, file)
		for i, line := range strings.Split(d.raw, "\n") {
			for _, s := range outside {
				if strings.Contains(line, s) {
					t.Errorf("%s:%d: mentions %q, which is not in the repository", file, i+1, s)
				}
			}
		}
	}
}

// sectionRefRE matches a textual cross-reference into protocol.md from
// another document, "protocol.md §5" or "protocol.md, §5".
var sectionRefRE = regexp.MustCompile(`protocol\.md\)?,? §(\d+(?:\.\d+)?)`)

// TestProtocolSectionRefs checks that "protocol.md §N" in any document
// names a section protocol.md has (a renumbering must update them).
func TestProtocolSectionRefs(t *testing.T) {
	p := readDoc(t, "protocol.md")
	have := map[string]bool{}
	for _, line := range strings.Split(p.raw, "\n") {
		if h, ok := heading(line); ok {
			if num, _, ok := strings.Cut(h, " "); ok {
				have[strings.TrimSuffix(num, ".")] = true
			}
		}
	}
	for _, file := range docFiles(t) {
		d := readDoc(t, file)
		for i, line := range strings.Split(d.raw, "\n") {
			for _, m := range sectionRefRE.FindAllStringSubmatch(line, -1) {
				if !have[m[1]] {
					t.Errorf("%s:%d: protocol.md has no section %s", file, i+1, m[1])
				}
			}
		}
	}
}
