package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Broadcast audience bans (store.AudienceBans).

func testAudienceBans(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	admin := mkUser(t, st, "admin@example.org")
	ann := mkUser(t, st, "ann@example.org")
	bob := mkUser(t, st, "bob@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Broadcast", base))
	other := mkClass(t, st, newClass(teacher.ID, "Other", base))

	before := time.Now().Add(-time.Second)
	must(t, st.BanAudienceUser(ctx, c.ID, ann.ID, teacher.ID), "BanAudienceUser")
	first, err := st.AudienceBans(ctx, c.ID)
	must(t, err, "AudienceBans")
	if len(first) != 1 {
		t.Fatalf("AudienceBans after one ban = %+v", first)
	}
	if at := first[0].CreatedAt; at.Before(before) || at.After(time.Now().Add(time.Second)) || at.Location() != time.UTC || !at.Equal(ms(at)) {
		t.Fatalf("ban's CreatedAt %v is not now, in UTC, to the millisecond", at)
	}
	// Idempotent: the first ban's author and time stay.
	must(t, st.BanAudienceUser(ctx, c.ID, ann.ID, admin.ID), "BanAudienceUser(again)")
	must(t, st.BanAudienceUser(ctx, c.ID, bob.ID, admin.ID), "BanAudienceUser(bob)")
	must(t, st.BanAudienceUser(ctx, other.ID, bob.ID, ""), "BanAudienceUser(other class, no author)")

	got, err := st.AudienceBans(ctx, c.ID)
	must(t, err, "AudienceBans")
	if len(got) != 2 {
		t.Fatalf("AudienceBans = %+v, want ann and bob", got)
	}
	same(t, got[0], first[0], "AudienceBans: ann's ban unchanged by the second ban")
	same(t, got[0], store.AudienceBan{ClassID: c.ID, UserID: ann.ID, BannedBy: teacher.ID, CreatedAt: first[0].CreatedAt}, "ann's ban")
	if got[1].UserID != bob.ID || got[1].BannedBy != admin.ID || got[1].CreatedAt.Before(got[0].CreatedAt) {
		t.Fatalf("AudienceBans[1] = %+v, want bob's ban by admin, after ann's", got[1])
	}
	o, err := st.AudienceBans(ctx, other.ID)
	must(t, err, "AudienceBans(other)")
	if len(o) != 1 || o[0].UserID != bob.ID || o[0].BannedBy != "" {
		t.Fatalf("AudienceBans(other) = %+v", o)
	}

	wantKind(t, st.BanAudienceUser(ctx, "nope", ann.ID, teacher.ID), apperr.Invalid, "BanAudienceUser(missing class)")
	wantKind(t, st.BanAudienceUser(ctx, c.ID, "ghost", teacher.ID), apperr.Invalid, "BanAudienceUser(missing user)")
	wantKind(t, st.BanAudienceUser(ctx, c.ID, teacher.ID, "ghost"), apperr.Invalid, "BanAudienceUser(missing author)")
	wantField(t, st.BanAudienceUser(ctx, c.ID, "", teacher.ID), "user", "BanAudienceUser(no user)")

	// Unban: once; another class's ban is not this one's.
	must(t, st.UnbanAudienceUser(ctx, c.ID, ann.ID), "UnbanAudienceUser")
	wantKind(t, st.UnbanAudienceUser(ctx, c.ID, ann.ID), apperr.NotFound, "UnbanAudienceUser(twice)")
	wantKind(t, st.UnbanAudienceUser(ctx, other.ID, ann.ID), apperr.NotFound, "UnbanAudienceUser(not banned there)")
	got, err = st.AudienceBans(ctx, c.ID)
	must(t, err, "AudienceBans after unban")
	if len(got) != 1 || got[0].UserID != bob.ID {
		t.Fatalf("AudienceBans after unban = %+v, want bob's only", got)
	}
	// A ban lifted can be made again.
	must(t, st.BanAudienceUser(ctx, c.ID, ann.ID, teacher.ID), "BanAudienceUser(after unban)")

	// Deleting the author keeps the ban without its author; deleting the
	// banned user or the class deletes it.
	must(t, st.DeleteUser(ctx, admin.ID), "DeleteUser(admin)")
	got, err = st.AudienceBans(ctx, c.ID)
	must(t, err, "AudienceBans after DeleteUser(admin)")
	if len(got) != 2 || got[0].UserID != bob.ID || got[0].BannedBy != "" {
		t.Fatalf("AudienceBans after deleting the author = %+v", got)
	}
	must(t, st.DeleteUser(ctx, ann.ID), "DeleteUser(ann)")
	got, err = st.AudienceBans(ctx, c.ID)
	must(t, err, "AudienceBans after DeleteUser(ann)")
	if len(got) != 1 || got[0].UserID != bob.ID {
		t.Fatalf("AudienceBans after deleting the banned user = %+v", got)
	}
	must(t, st.DeleteClass(ctx, c.ID), "DeleteClass")
	got, err = st.AudienceBans(ctx, c.ID)
	must(t, err, "AudienceBans(deleted class)")
	if len(got) != 0 {
		t.Fatalf("bans of a deleted class remain: %+v", got)
	}
	o, err = st.AudienceBans(ctx, other.ID)
	must(t, err, "AudienceBans(other) after DeleteClass")
	if len(o) != 1 {
		t.Fatalf("the other class's ban went with the deleted class: %+v", o)
	}
}
