package storage

// Saved device searches: a name an operator gave to a query of the
// device search (GET /v1/devices), shared by every operator of the node
// and shown in the console and by termctl. The store keeps the query as
// text; what it means (which keys, which values) is the admin API's to
// check, so a new search filter needs no storage change.

import (
	"context"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Saved filter bounds.
const (
	// MaxDeviceFilters is how many saved filters a node keeps: a list an
	// operator reads at a glance, not a second registry.
	MaxDeviceFilters = 200
	// MaxDeviceFilterName bounds a filter's name, in bytes.
	MaxDeviceFilterName = 64
	// MaxDeviceFilterQuery bounds a filter's query, in bytes (every search
	// key at its longest fits several times over).
	MaxDeviceFilterQuery = 4096
)

// ErrTooMany is returned when a store already holds the most records of
// a kind that it keeps (a new saved filter beyond MaxDeviceFilters).
var ErrTooMany = errors.New("storage: too many records")

// DeviceFilter is a saved device search.
type DeviceFilter struct {
	// Name identifies the filter: 1..MaxDeviceFilterName bytes of UTF-8,
	// printable, without leading or trailing spaces.
	Name string `json:"name"`
	// Query is the search's URL query, as GET /v1/devices takes it.
	Query string `json:"query"`
	// CreatedBy and UpdatedBy are the admin tokens' names; CreatedMs and
	// UpdatedMs unix ms. A save over an existing name keeps the Created
	// pair.
	CreatedBy string `json:"created_by,omitempty"`
	CreatedMs int64  `json:"created_ms"`
	UpdatedBy string `json:"updated_by,omitempty"`
	UpdatedMs int64  `json:"updated_ms"`
}

// DeviceFilters stores saved device searches.
type DeviceFilters interface {
	// PutDeviceFilter creates the filter f.Name or replaces its query,
	// durable before return (it survives kill -9). A replaced filter keeps
	// its CreatedBy and CreatedMs. A new name beyond MaxDeviceFilters is
	// ErrTooMany. It returns the filter as stored and whether it is new.
	PutDeviceFilter(ctx context.Context, f DeviceFilter) (stored DeviceFilter, created bool, err error)
	// DeleteDeviceFilter deletes the filter, durable before return;
	// ErrNotFound when there is none of that name.
	DeleteDeviceFilter(ctx context.Context, name string) error
	// DeviceFilter returns the named filter or ErrNotFound.
	DeviceFilter(ctx context.Context, name string) (DeviceFilter, error)
	// ListDeviceFilters returns every filter in name order.
	ListDeviceFilters(ctx context.Context) ([]DeviceFilter, error)
}

// CheckDeviceFilterName rejects names that can never be stored.
func CheckDeviceFilterName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty filter name", ErrInvalid)
	case len(name) > MaxDeviceFilterName:
		return fmt.Errorf("%w: filter name of %d bytes exceeds %d", ErrInvalid, len(name), MaxDeviceFilterName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: filter name is not UTF-8", ErrInvalid)
	}
	for i, r := range name {
		if !unicode.IsPrint(r) || (unicode.IsSpace(r) && (i == 0 || i+utf8.RuneLen(r) == len(name))) {
			return fmt.Errorf("%w: filter name has a control character or leading or trailing space", ErrInvalid)
		}
	}
	return nil
}

// checkDeviceFilter validates f for storing.
func checkDeviceFilter(f *DeviceFilter) error {
	if err := CheckDeviceFilterName(f.Name); err != nil {
		return err
	}
	if len(f.Query) > MaxDeviceFilterQuery {
		return fmt.Errorf("%w: filter query of %d bytes exceeds %d", ErrInvalid, len(f.Query), MaxDeviceFilterQuery)
	}
	if !utf8.ValidString(f.Query) {
		return fmt.Errorf("%w: filter query is not UTF-8", ErrInvalid)
	}
	f.CreatedBy = truncateUTF8(validUTF8(f.CreatedBy), MaxDeviceFilterName)
	f.UpdatedBy = truncateUTF8(validUTF8(f.UpdatedBy), MaxDeviceFilterName)
	return nil
}

// mergeDeviceFilter is what PutDeviceFilter stores over old (found: there
// was one of that name).
func mergeDeviceFilter(f DeviceFilter, old DeviceFilter, found bool) DeviceFilter {
	if found {
		f.CreatedBy, f.CreatedMs = old.CreatedBy, old.CreatedMs
	}
	return f
}
