package graph

import (
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/graph/model"
)

func ptr[T any](v T) *T { return &v }

// TestMatches checks the in-process evaluator that subscriptions and
// mutation conditions use, against DynamoDB's semantics.
func TestMatches(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	rec := record{"title": "Go generics", "duration": 60, "price": 9.5, "tags": []string{"go", "types"},
		"startTime": t0, "isFree": false, "description": nil}
	cases := []struct {
		name string
		f    *model.ModelSubscriptionLiveClassFilterInput
		want bool
	}{
		{"eq", &model.ModelSubscriptionLiveClassFilterInput{Title: &model.ModelSubscriptionStringInput{Eq: ptr("Go generics")}}, true},
		{"ne", &model.ModelSubscriptionLiveClassFilterInput{Title: &model.ModelSubscriptionStringInput{Ne: ptr("Go generics")}}, false},
		{"beginsWith", &model.ModelSubscriptionLiveClassFilterInput{Title: &model.ModelSubscriptionStringInput{BeginsWith: ptr("Go ")}}, true},
		{"contains substring", &model.ModelSubscriptionLiveClassFilterInput{Title: &model.ModelSubscriptionStringInput{Contains: ptr("gen")}}, true},
		{"contains tag", &model.ModelSubscriptionLiveClassFilterInput{Tags: &model.ModelSubscriptionStringInput{Contains: ptr("types")}}, true},
		{"notContains tag", &model.ModelSubscriptionLiveClassFilterInput{Tags: &model.ModelSubscriptionStringInput{NotContains: ptr("go")}}, false},
		{"between ints", &model.ModelSubscriptionLiveClassFilterInput{Duration: &model.ModelSubscriptionIntInput{Between: []*int{ptr(30), ptr(60)}}}, true},
		{"gt float", &model.ModelSubscriptionLiveClassFilterInput{Price: &model.ModelSubscriptionFloatInput{Gt: ptr(9.5)}}, false},
		{"in", &model.ModelSubscriptionLiveClassFilterInput{Duration: &model.ModelSubscriptionIntInput{In: []*int{ptr(45), ptr(60)}}}, true},
		{"notIn", &model.ModelSubscriptionLiveClassFilterInput{Duration: &model.ModelSubscriptionIntInput{NotIn: []*int{ptr(60)}}}, false},
		{"time in another zone", &model.ModelSubscriptionLiveClassFilterInput{StartTime: &model.ModelSubscriptionStringInput{Eq: ptr("2026-01-02T12:00:00+02:00")}}, true},
		{"missing attribute ne", &model.ModelSubscriptionLiveClassFilterInput{Description: &model.ModelSubscriptionStringInput{Ne: ptr("x")}}, true},
		{"missing attribute eq", &model.ModelSubscriptionLiveClassFilterInput{Description: &model.ModelSubscriptionStringInput{Eq: ptr("x")}}, false},
		{"or", &model.ModelSubscriptionLiveClassFilterInput{Or: []*model.ModelSubscriptionLiveClassFilterInput{
			{Title: &model.ModelSubscriptionStringInput{Eq: ptr("x")}},
			{IsFree: &model.ModelSubscriptionBooleanInput{Eq: ptr(false)}},
		}}, true},
		{"and", &model.ModelSubscriptionLiveClassFilterInput{And: []*model.ModelSubscriptionLiveClassFilterInput{
			{Title: &model.ModelSubscriptionStringInput{Eq: ptr("Go generics")}},
			{IsFree: &model.ModelSubscriptionBooleanInput{Eq: ptr(true)}},
		}}, false},
		{"nil filter", nil, true},
	}
	for _, tc := range cases {
		f, err := toFilter(tc.f, "filter", filterOptions{inMemory: true})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := matches(f, rec); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStoreFiltersRejectInMemoryOps: in / notIn never reach a store query.
func TestStoreFiltersRejectInMemoryOps(t *testing.T) {
	_, err := storeFilter(&model.ModelSubscriptionLiveClassFilterInput{Duration: &model.ModelSubscriptionIntInput{In: []*int{ptr(1)}}})
	if err == nil {
		t.Fatal("in accepted for a store query")
	}
}
