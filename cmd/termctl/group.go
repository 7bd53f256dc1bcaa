package main

// termctl group ...: device groups over /v1/groups (docs/groups.md).

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

func (a *app) groupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Manage device groups: create, list, show, members, add, remove, import, delete, send, rotate-key",
	}
	cmd.AddCommand(a.groupCreateCmd(), a.groupListCmd(),
		a.idCmd("show", "Show a group (GET /v1/groups/{id})", "GET", "/v1/groups", ""),
		a.groupMembersCmd(), a.groupAddCmd(), a.groupRemoveCmd(),
		a.idCmd("delete", "Delete a group and its memberships; refused while a release, rollout or ACL refers to it (DELETE /v1/groups/{id})",
			"DELETE", "/v1/groups", ""),
		a.groupSendCmd(), a.groupRotateCmd(), a.groupImportCmd())
	return cmd
}

func groupPath(id string, rest ...string) string {
	return "/v1/groups/" + url.PathEscape(id) + strings.Join(rest, "")
}

func (a *app) groupCreateCmd() *cobra.Command {
	var in api.GroupCreate
	var f api.GroupFilter
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a group (POST /v1/groups); --policy operator (default), open, allowlist or dynamic (with --filter-*)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.ID = args[0]
			if len(f.Devices)+len(f.Models)+len(f.FW) > 0 {
				in.Filter = &f
			}
			return a.send(cmd.Context(), "POST", "/v1/groups", in)
		},
	}
	cmd.Flags().StringSliceVar(&f.Models, "filter-model", nil, "dynamic: model globs (repeatable)")
	cmd.Flags().StringSliceVar(&f.FW, "filter-fw", nil, "dynamic: fw globs (repeatable)")
	cmd.Flags().StringSliceVar(&f.Devices, "filter-device", nil, "dynamic: device id globs (repeatable)")
	cmd.Flags().StringVar(&in.Name, "name", "", "display name")
	cmd.Flags().StringVar(&in.Policy, "policy", "operator", "who changes members: operator, open, allowlist, or dynamic (a saved filter)")
	cmd.Flags().StringSliceVar(&in.Allow, "allow", nil, "allowlist entries device:GLOB or model:GLOB (with --policy allowlist; repeatable)")
	cmd.Flags().IntVar(&in.Limit, "limit", 0, "member limit (0: none)")
	return cmd
}

func (a *app) groupListCmd() *cobra.Command {
	return listCmd(a, "list", "List groups (GET /v1/groups)", "/v1/groups",
		"ID\tNAME\tPOLICY\tMEMBERS\tONLINE\tLIMIT", func(w io.Writer, list *api.GroupList) {
			for _, g := range list.Groups {
				limit := "-"
				if g.Limit > 0 {
					limit = strconv.Itoa(g.Limit)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", g.ID, dash(g.Name), g.Policy, g.Members, g.Online, limit)
			}
		})
}

func (a *app) groupMembersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members ID",
		Short: "List a group's members, their role, who added them and when (GET /v1/groups/{id}/members)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ms api.GroupMembers
			if done, err := a.fetch(cmd.Context(), groupPath(args[0], "/members"), &ms); done {
				return err
			}
			tw := a.table("DEVICE\tROLE\tBY\tSINCE\tONLINE")
			for _, m := range ms.Members {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", m.DeviceID, m.Role, m.By, a.msTime(m.AtMs, timeLayout), m.Online)
			}
			return tw.Flush()
		},
	}
}

func (a *app) groupAddCmd() *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "add GROUP DEVICE",
		Short: "Add a device to a group or change its role (PUT /v1/groups/{id}/members/{device}); it is sent GROUP_SYNC if online",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.send(cmd.Context(), "PUT", groupPath(args[0], "/members/", url.PathEscape(args[1])), api.GroupMemberPut{Role: role})
		},
	}
	cmd.Flags().StringVar(&role, "role", "member", "member or moderator")
	return cmd
}

func (a *app) groupRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove GROUP DEVICE",
		Short: "Remove a device from a group (DELETE /v1/groups/{id}/members/{device})",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.send(cmd.Context(), "DELETE", groupPath(args[0], "/members/", url.PathEscape(args[1])), nil)
		},
	}
}

func (a *app) groupSendCmd() *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use:   "send ID --text TEXT",
		Short: "Send a message to the group's online members, at most 1024 bytes (POST /v1/groups/{id}/send)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if text == "" {
				return fmt.Errorf("--text is required")
			}
			return a.send(cmd.Context(), "POST", groupPath(args[0], "/send"), api.GroupSend{Text: text})
		},
	}
	cmd.Flags().StringVar(&text, "text", "", "the message (UTF-8, at most 1024 bytes)")
	return cmd
}

func (a *app) groupRotateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-key",
		Short: "Replace the grant signing key now; unexpired grants stay valid (POST /v1/group-keys/rotate)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.send(cmd.Context(), "POST", "/v1/group-keys/rotate", nil)
		},
	}
}
