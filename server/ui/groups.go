package ui

// Device groups: the list (policy, members, limit) with creation, and a
// group's page: its members paged with role and who added each, adding
// and removing members, a message to the group, and deletion. All
// through /v1/groups (docs/admin-api.md §20).

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/termd/termd/server/admin/api"
)

// membersPage is the members listed per page of a group.
const membersPage = 100

func init() {
	register(Page{Nav: "Groups", Path: Prefix + "groups", Order: 60, Template: "groups.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"groups", func(w http.ResponseWriter, r *Request) error {
			var l api.GroupList
			if err := r.Get("/v1/groups", &l); err != nil {
				return err
			}
			return r.Render(w, "Groups", &groupsData{Groups: l.Groups})
		})
		rt.Get(Prefix+"groups/{id}", func(w http.ResponseWriter, r *Request) error {
			d, err := loadGroup(r, r.PathValue("id"), r.URL.Query().Get("cursor"))
			if err != nil {
				return err
			}
			return r.Render(w, "Group "+d.Group.ID, d)
		})
		rt.Post(Prefix+"groups/create", createGroup)
		rt.Post(Prefix+"groups/{id}/members", func(w http.ResponseWriter, r *Request) error {
			dev := strings.TrimSpace(r.PostFormValue("device"))
			if dev == "" {
				return badInput("give a device id")
			}
			var out api.DeviceGroups
			body := api.GroupMemberPut{Role: r.PostFormValue("role")}
			if err := r.API(http.MethodPut, r.fill("/v1/groups/{id}/members/")+url.PathEscape(dev), body, &out); err != nil {
				return err
			}
			r.Flash(fmt.Sprintf("%s added to %s as %s.", dev, r.PathValue("id"), roleOr(body.Role)))
			r.Back(w)
			return nil
		})
		rt.Post(Prefix+"groups/{id}/members/{device}/remove", func(w http.ResponseWriter, r *Request) error {
			if err := r.API(http.MethodDelete, r.fill("/v1/groups/{id}/members/{device}"), nil, nil); err != nil {
				return err
			}
			r.Flash(fmt.Sprintf("%s removed from %s.", r.PathValue("device"), r.PathValue("id")))
			r.Back(w)
			return nil
		})
		rt.Post(Prefix+"groups/{id}/send", func(w http.ResponseWriter, r *Request) error {
			text := r.PostFormValue("text")
			if strings.TrimSpace(text) == "" {
				return badInput("the message is empty")
			}
			var sent api.GroupSent
			if err := r.API(http.MethodPost, r.fill("/v1/groups/{id}/send"), api.GroupSend{Text: text}, &sent); err != nil {
				return err
			}
			r.Flash(fmt.Sprintf("Message %d delivered to %d online member(s).", sent.MsgID, sent.Delivered))
			r.Back(w)
			return nil
		})
		rt.Post(Prefix+"groups/{id}/delete", func(w http.ResponseWriter, r *Request) error {
			if err := r.API(http.MethodDelete, r.fill("/v1/groups/{id}"), nil, nil); err != nil {
				return err
			}
			r.Flash(fmt.Sprintf("Group %s deleted.", r.PathValue("id")))
			http.Redirect(w, r.Request, Prefix+"groups", http.StatusSeeOther)
			return nil
		})
	}})
}

// groupsData is groups.html's data: the list, or one group (Group set).
type groupsData struct {
	Groups  []api.Group
	Group   *api.Group
	Members api.GroupMembers
	// Cursor is the page's after= ("" on the first page).
	Cursor string
}

func loadGroup(r *Request, id, cursor string) (*groupsData, error) {
	d := &groupsData{Group: &api.Group{}, Cursor: cursor}
	path := "/v1/groups/" + url.PathEscape(id)
	if err := r.Get(path, d.Group); err != nil {
		return nil, err
	}
	q := url.Values{"limit": {strconv.Itoa(membersPage)}, "after": {cursor}}
	if err := r.Get(path+"/members?"+q.Encode(), &d.Members); err != nil {
		return nil, err
	}
	return d, nil
}

// Dynamic reports whether the group's members are a filter's (nobody
// adds or removes them).
func (d *groupsData) Dynamic() bool { return d.Group != nil && d.Group.Policy == "dynamic" }

func roleOr(role string) string {
	if role == "" {
		return "member"
	}
	return role
}

// createGroup reads the creation form into POST /v1/groups.
func createGroup(w http.ResponseWriter, r *Request) error {
	in := api.GroupCreate{ID: strings.TrimSpace(r.PostFormValue("id")), Name: strings.TrimSpace(r.PostFormValue("name")),
		Policy: r.PostFormValue("policy"), Allow: splitList(r.PostFormValue("allow"))}
	if s := strings.TrimSpace(r.PostFormValue("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return badInput("limit %q: want a whole number, 0 for none", s)
		}
		in.Limit = n
	}
	if in.Policy == "dynamic" {
		in.Filter = &api.GroupFilter{Models: splitList(r.PostFormValue("filter_models")), FW: splitList(r.PostFormValue("filter_fw")),
			Devices: splitList(r.PostFormValue("filter_devices"))}
	}
	var g api.Group
	if err := r.API(http.MethodPost, "/v1/groups", in, &g); err != nil {
		return err
	}
	r.Flash(fmt.Sprintf("Group %s created (%s).", g.ID, g.Policy))
	http.Redirect(w, r.Request, joinPath(Prefix+"groups", g.ID), http.StatusSeeOther)
	return nil
}
