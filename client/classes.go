package client

import (
	"context"
	"time"
)

// LiveClass is a class with the fields the helpers select.
type LiveClass struct {
	ID                  string    `json:"id"`
	Title               string    `json:"title"`
	Description         *string   `json:"description"`
	InstructorID        string    `json:"instructorId"`
	StartTime           time.Time `json:"startTime"`
	EndTime             time.Time `json:"endTime"`
	Duration            int       `json:"duration"`
	AWSService          string    `json:"awsService"`
	RequiresEnrollment  bool      `json:"requiresEnrollment"`
	AccessLevel         string    `json:"accessLevel"`
	MaxParticipants     int       `json:"maxParticipants"`
	CurrentParticipants int       `json:"currentParticipants"`
	Category            string    `json:"category"`
	Level               string    `json:"level"`
	Price               float64   `json:"price"`
	IsFree              bool      `json:"isFree"`
	Tags                []string  `json:"tags"`
	Status              string    `json:"status"`
	IsLive              bool      `json:"isLive"`
	IsUpcoming          bool      `json:"isUpcoming"`
	CreatedAt           time.Time `json:"createdAt"`
	UpdatedAt           time.Time `json:"updatedAt"`
}

const classFields = `id title description instructorId startTime endTime duration awsService
requiresEnrollment accessLevel maxParticipants currentParticipants category level
price isFree tags status isLive isUpcoming createdAt updatedAt`

// CreateLiveClassInput is Amplify's CreateLiveClassInput without the fields
// the server manages. Empty optional fields are left out of the request.
type CreateLiveClassInput struct {
	Title              string    `json:"title"`
	Description        *string   `json:"description,omitempty"`
	InstructorID       string    `json:"instructorId,omitempty"` // admins only
	StartTime          time.Time `json:"startTime"`
	EndTime            time.Time `json:"endTime"`
	AWSService         string    `json:"awsService"` // CHIME or IVS
	RequiresEnrollment bool      `json:"requiresEnrollment"`
	AccessLevel        string    `json:"accessLevel"` // STUDENT, MENTOR or ADMIN
	MaxParticipants    int       `json:"maxParticipants"`
	Category           string    `json:"category"`
	Level              string    `json:"level"` // BEGINNER, INTERMEDIATE or ADVANCED
	Price              float64   `json:"price"`
	IsFree             bool      `json:"isFree"`
	Tags               []string  `json:"tags"`
}

// CreateLiveClass creates a class (MENTOR or ADMIN).
func (c *Client) CreateLiveClass(ctx context.Context, in CreateLiveClassInput) (LiveClass, error) {
	if in.Tags == nil {
		in.Tags = []string{}
	}
	var out struct {
		CreateLiveClass LiveClass `json:"createLiveClass"`
	}
	err := c.GraphQL(ctx, `mutation($input: CreateLiveClassInput!) { createLiveClass(input: $input) { `+classFields+` } }`,
		map[string]any{"input": in}, &out)
	return out.CreateLiveClass, err
}

// LiveClassPage is one page of classes; NextToken is nil on the last.
type LiveClassPage struct {
	Items     []LiveClass `json:"items"`
	NextToken *string     `json:"nextToken"`
}

// ListLiveClasses lists classes; filter is a ModelLiveClassFilterInput
// as a map (nil for all), limit 0 for the server's default.
func (c *Client) ListLiveClasses(ctx context.Context, filter map[string]any, limit int, nextToken string) (LiveClassPage, error) {
	vars := map[string]any{}
	if filter != nil {
		vars["filter"] = filter
	}
	if limit > 0 {
		vars["limit"] = limit
	}
	if nextToken != "" {
		vars["nextToken"] = nextToken
	}
	var out struct {
		ListLiveClasses LiveClassPage `json:"listLiveClasses"`
	}
	err := c.GraphQL(ctx, `query($filter: ModelLiveClassFilterInput, $limit: Int, $nextToken: String) {
  listLiveClasses(filter: $filter, limit: $limit, nextToken: $nextToken) { items { `+classFields+` } nextToken } }`,
		vars, &out)
	return out.ListLiveClasses, err
}

// Enrollment is a seat in a class.
type Enrollment struct {
	ID          string    `json:"id"`
	UserID      string    `json:"userId"`
	LiveClassID string    `json:"liveClassId"`
	EnrolledAt  time.Time `json:"enrolledAt"`
}

// Enroll enrolls the signed-in user in a class.
func (c *Client) Enroll(ctx context.Context, classID string) (Enrollment, error) {
	var out struct {
		CreateLiveClassEnrollment Enrollment `json:"createLiveClassEnrollment"`
	}
	err := c.GraphQL(ctx, `mutation($input: CreateLiveClassEnrollmentInput!) {
  createLiveClassEnrollment(input: $input) { id userId liveClassId enrolledAt } }`,
		map[string]any{"input": map[string]any{"liveClassId": classID}}, &out)
	return out.CreateLiveClassEnrollment, err
}

// JoinToken is a grant to join a class's room.
type JoinToken struct {
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expiresAt"`
	AWSService  string    `json:"awsService"`
	JoinURL     string    `json:"joinUrl"`
	Role        string    `json:"role"`
	LiveClassID string    `json:"liveClassId"`
}

// generateTokenQuery is a constant so the load generator's hot loop
// builds no query text.
const generateTokenQuery = `query($id: ID!) { generateLiveClassToken(liveClassId: $id) { token expiresAt awsService joinUrl role liveClassId } }`

// GenerateLiveClassToken asks for the signed-in user's join token.
func (c *Client) GenerateLiveClassToken(ctx context.Context, classID string) (JoinToken, error) {
	var out struct {
		GenerateLiveClassToken *JoinToken `json:"generateLiveClassToken"`
	}
	if err := c.GraphQL(ctx, generateTokenQuery, map[string]any{"id": classID}, &out); err != nil {
		return JoinToken{}, err
	}
	if out.GenerateLiveClassToken == nil {
		return JoinToken{}, &Error{Code: "INTERNAL_SERVER_ERROR", Message: "generateLiveClassToken returned null"}
	}
	return *out.GenerateLiveClassToken, nil
}
