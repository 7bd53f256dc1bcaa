package storage

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestGroupsContractMemory(t *testing.T)         { runGroupsContract(t, openMemory) }
func TestGroupsContractBadgerInMemory(t *testing.T) { runGroupsContract(t, openBadgerInMemory) }
func TestGroupsContractBadgerDir(t *testing.T)      { runGroupsContract(t, openBadgerDir) }

// runGroupsContract is what every Groups implementation must do.
func runGroupsContract(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s Groups)
	}{
		{"apply and load", grContractApply},
		{"invalid writes change nothing", grContractInvalid},
		{"request ids", grContractIdem},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t).(Groups)) })
	}
}

func grContractApply(t *testing.T, s Groups) {
	ctx := context.Background()
	gs, ds, err := s.LoadGroups(ctx)
	if err != nil || len(gs) != 0 || len(ds) != 0 {
		t.Fatalf("empty store: %v %v %v", gs, ds, err)
	}
	a := Group{ID: "A", Name: "Store A", Policy: PolicyOpen, Limit: 2, CreatedMs: 1}
	b := Group{ID: "B", Policy: PolicyAllowlist, Allow: []string{"model:P4*"}, CreatedMs: 2}
	c := Group{ID: "C", Policy: PolicyDynamic, Filter: &GroupFilter{Models: []string{"P4*"}, FW: []string{"2.*"}}, CreatedMs: 3}
	d1 := DeviceGroups{DeviceID: "T1", Version: 3, Members: []GroupMember{{GroupID: "A", Role: RoleMember, By: "device", AtMs: 5}},
		Marks: []OperatorMark{{GroupID: "B", AtMs: 4}}}
	d2 := DeviceGroups{DeviceID: "T2", Version: 1}
	if err := s.ApplyGroups(ctx, GroupWrite{PutGroups: []Group{c, b, a}, Devices: []DeviceGroups{d1, d2}}); err != nil {
		t.Fatal(err)
	}
	gs, ds, err = s.LoadGroups(ctx)
	if err != nil || !reflect.DeepEqual(gs, []Group{a, b, c}) || !reflect.DeepEqual(ds, []DeviceGroups{d1, d2}) {
		t.Fatalf("LoadGroups = %+v %+v %v", gs, ds, err)
	}
	// Replace a device, delete a group, in one write.
	d1.Version, d1.Members = 4, nil
	if err := s.ApplyGroups(ctx, GroupWrite{DeleteGroups: []string{"A"}, Devices: []DeviceGroups{d1}}); err != nil {
		t.Fatal(err)
	}
	gs, ds, err = s.LoadGroups(ctx)
	if err != nil || len(gs) != 2 || gs[0].ID != "B" || ds[0].Version != 4 || len(ds[0].Members) != 0 {
		t.Fatalf("after delete: %+v %+v %v", gs, ds, err)
	}
}

func grContractInvalid(t *testing.T, s Groups) {
	ctx := context.Background()
	good := DeviceGroups{DeviceID: "T1", Version: 1}
	for name, w := range map[string]GroupWrite{
		"bad policy":             {PutGroups: []Group{{ID: "X", Policy: "anyone"}}, Devices: []DeviceGroups{good}},
		"empty id":               {PutGroups: []Group{{ID: "", Policy: PolicyOpen}}},
		"too many":               {Devices: []DeviceGroups{good, {DeviceID: "T2", Members: make([]GroupMember, MaxMemberships+1)}}},
		"empty device":           {Devices: []DeviceGroups{{DeviceID: ""}}},
		"allow not list":         {PutGroups: []Group{{ID: "X", Policy: PolicyOpen, Allow: []string{"model:x"}}}},
		"allow syntax":           {PutGroups: []Group{{ID: "X", Policy: PolicyAllowlist, Allow: []string{"x"}}}},
		"dynamic without filter": {PutGroups: []Group{{ID: "X", Policy: PolicyDynamic}}},
		"dynamic with limit":     {PutGroups: []Group{{ID: "X", Policy: PolicyDynamic, Limit: 3, Filter: &GroupFilter{Models: []string{"a"}}}}},
		"filter not dynamic":     {PutGroups: []Group{{ID: "X", Policy: PolicyOpen, Filter: &GroupFilter{Models: []string{"a"}}}}},
		"bad filter pattern":     {PutGroups: []Group{{ID: "X", Policy: PolicyDynamic, Filter: &GroupFilter{FW: []string{"["}}}}},
	} {
		if err := s.ApplyGroups(ctx, w); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	gs, ds, err := s.LoadGroups(ctx)
	if err != nil || len(gs)+len(ds) != 0 {
		t.Fatalf("a refused write left %+v %+v (%v)", gs, ds, err)
	}
}

func grContractIdem(t *testing.T, s Groups) {
	ctx := context.Background()
	e1 := GroupIdem{DeviceID: "T1", RequestID: 1, Op: 3, From: "A", To: "B", AtMs: 100, Version: 2,
		Members: []GroupMember{{GroupID: "B", Role: RoleMember, By: "device", AtMs: 100}}}
	e2 := GroupIdem{DeviceID: "T1", RequestID: 1 << 40, Op: 1, To: "A", AtMs: 200, Version: 1}
	e3 := GroupIdem{DeviceID: "T2", RequestID: 1, Op: 2, From: "A", AtMs: 300, Version: 5}
	if err := s.ApplyGroups(ctx, GroupWrite{Idem: []GroupIdem{e3, e1, e2}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadGroupIdem(ctx, 150)
	if err != nil || !reflect.DeepEqual(got, []GroupIdem{e2, e3}) {
		t.Fatalf("LoadGroupIdem(150) = %+v, %v", got, err)
	}
	if n, err := s.PruneGroupIdem(ctx, 250); err != nil || n != 2 {
		t.Fatalf("PruneGroupIdem = %d, %v", n, err)
	}
	got, err = s.LoadGroupIdem(ctx, 0)
	if err != nil || !reflect.DeepEqual(got, []GroupIdem{e3}) {
		t.Fatalf("after prune: %+v, %v", got, err)
	}
}
