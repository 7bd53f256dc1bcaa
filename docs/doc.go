// Package docs holds termd's documentation. Its only code is the test
// that keeps the documents' links and anchors resolving and the protocol
// description self-contained (docs_test.go).
package docs
