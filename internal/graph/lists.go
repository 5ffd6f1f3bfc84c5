package graph

import (
	"context"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/graph/model"
	"github.com/liveclass/liveclass/internal/store"
)

func (r *Resolver) listClasses(ctx context.Context, instructor store.UserID, filter *model.ModelLiveClassFilterInput, dir *model.ModelSortDirection, limit *int, next *string) (*model.ModelLiveClassConnection, error) {
	f, err := storeFilter(filter)
	if err != nil {
		return nil, err
	}
	p, err := pageOf(limit, next, dir)
	if err != nil {
		return nil, err
	}
	l, err := r.cfg.Classes.ListClasses(ctx, auth.ActorFrom(ctx), store.ClassQuery{Filter: f, InstructorID: instructor, Page: p})
	if err != nil {
		return nil, err
	}
	r.hintClasses(ctx, l.Items)
	return classConn(l), nil
}

func (r *Resolver) listEnrollments(ctx context.Context, q store.EnrollmentQuery, filter *model.ModelLiveClassEnrollmentFilterInput, dir *model.ModelSortDirection, limit *int, next *string) (*model.ModelLiveClassEnrollmentConnection, error) {
	f, err := storeFilter(filter)
	if err != nil {
		return nil, err
	}
	if q.Page, err = pageOf(limit, next, dir); err != nil {
		return nil, err
	}
	q.Filter = f
	l, err := r.cfg.Classes.ListEnrollments(ctx, auth.ActorFrom(ctx), q)
	if err != nil {
		return nil, err
	}
	r.hintEnrollments(ctx, l.Items)
	return enrollmentConn(l), nil
}

func (r *Resolver) listRecordings(ctx context.Context, q store.RecordingQuery, filter *model.ModelLiveClassRecordingFilterInput, dir *model.ModelSortDirection, limit *int, next *string) (*model.ModelLiveClassRecordingConnection, error) {
	f, err := storeFilter(filter)
	if err != nil {
		return nil, err
	}
	if q.Page, err = pageOf(limit, next, dir); err != nil {
		return nil, err
	}
	q.Filter = f
	l, err := r.cfg.Classes.ListRecordings(ctx, auth.ActorFrom(ctx), q)
	if err != nil {
		return nil, err
	}
	r.hintRecordings(ctx, l.Items)
	return recordingConn(l), nil
}

func (r *Resolver) loadClass(ctx context.Context, id store.ClassID) (*store.LiveClass, error) {
	c, ok, err := r.loadersFrom(ctx).classes.Load(ctx, id)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func (r *Resolver) generateToken(ctx context.Context, class string) (*model.LiveClassToken, error) {
	g, err := r.cfg.Classes.GenerateJoinToken(ctx, auth.ActorFrom(ctx), store.ClassID(class))
	if err != nil {
		return nil, err
	}
	return &model.LiveClassToken{
		Token:       g.Token,
		ExpiresAt:   g.ExpiresAt,
		AWSService:  g.Service,
		JoinURL:     g.JoinURL,
		Role:        g.Role,
		LiveClassID: class,
	}, nil
}
