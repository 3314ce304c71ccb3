package imds_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/imds"
	"github.com/nodeprep/nodeprep/internal/imds/aemmtest"
)

const testUserData = "apiVersion: nodeprep.dev/v1alpha1\nkind: NodePrepConfig\nspec: {}\n"

func identityDoc() map[string]any {
	return map[string]any{
		"accountId":        "111122223333",
		"availabilityZone": "eu-west-1b",
		"instanceId":       "i-0nodeprep000000001",
		"instanceType":     "c6in.4xlarge",
		"region":           "eu-west-1",
		"privateIp":        "10.0.0.10",
		"version":          "2017-09-30",
		"architecture":     "x86_64",
	}
}

func TestMockIdentityAndUserData(t *testing.T) {
	ep := aemmtest.Start(t, aemmtest.Config{
		Dynamic:  aemmtest.Section{Values: map[string]any{"instance-identity-document": identityDoc()}},
		UserData: aemmtest.Section{Values: map[string]any{"userdata": aemmtest.B64(testUserData)}},
	}, 0)
	c := imds.New(ep, imds.WithDeadline(30*time.Second))
	ctx := context.Background()

	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	want := imds.Identity{InstanceID: "i-0nodeprep000000001", Region: "eu-west-1", AvailabilityZone: "eu-west-1b", InstanceType: "c6in.4xlarge", AccountID: "111122223333"}
	if id != want {
		t.Errorf("Identity = %+v, want %+v", id, want)
	}
	ud, err := c.UserData(ctx)
	if err != nil {
		t.Fatalf("UserData: %v", err)
	}
	if string(ud) != testUserData {
		t.Errorf("UserData = %q, want %q", ud, testUserData)
	}
}

func TestMockNoUserData(t *testing.T) {
	// Moving the user-data path away makes /latest/user-data answer 404, as
	// IMDS does for an instance launched without user data.
	ep := aemmtest.Start(t, aemmtest.Config{
		UserData: aemmtest.Section{Paths: map[string]string{"userdata": "/latest/user-data-elsewhere"}},
	}, 0)
	c := imds.New(ep, imds.WithDeadline(30*time.Second))
	_, err := c.UserData(context.Background())
	if !errors.Is(err, imds.ErrNoUserData) {
		t.Fatalf("UserData error = %v, want ErrNoUserData", err)
	}
}

func TestMockNotYetReachable(t *testing.T) {
	// IMDS comes up 2s after the first request, as in early boot.
	ep := aemmtest.Start(t, aemmtest.Config{
		Dynamic: aemmtest.Section{Values: map[string]any{"instance-identity-document": identityDoc()}},
	}, 2*time.Second)
	c := imds.New(ep, imds.WithDeadline(30*time.Second))
	id, err := c.Identity(context.Background())
	if err != nil {
		t.Fatalf("Identity while IMDS comes up: %v", err)
	}
	if id.InstanceID != "i-0nodeprep000000001" {
		t.Errorf("InstanceID = %q", id.InstanceID)
	}
}

func TestUnreachableGivesUpWithinDeadline(t *testing.T) {
	port := aemmtest.FreePort(t) // nothing listens there
	c := imds.New("http://127.0.0.1:"+port, imds.WithDeadline(1500*time.Millisecond))
	start := time.Now()
	_, err := c.Identity(context.Background())
	if err == nil {
		t.Fatal("Identity against a closed port succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v, deadline was 1.5s", d)
	}
}

func TestMaxAttemptsBoundsRetries(t *testing.T) {
	port := aemmtest.FreePort(t)
	c := imds.New("http://127.0.0.1:"+port, imds.WithMaxAttempts(2), imds.WithDeadline(time.Minute))
	start := time.Now()
	if _, err := c.UserData(context.Background()); err == nil || errors.Is(err, imds.ErrNoUserData) {
		t.Fatalf("UserData against a closed port: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("2 attempts took %v", d)
	}
}
