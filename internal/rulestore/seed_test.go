package rulestore

import (
	"os"
	"testing"
)

func TestSeedNameVectors(t *testing.T) {
	// DESIGN.md §1, from the predecessor.
	tests := []struct{ repo, branch, pipeline, want string }{
		{"GitHubRepositoryName", "MyBranchName", "NameOfTheCodePipeline", "GitHubRepositoryName-MyBranchName-NameOfTheCodePipel-26BA0737"},
		{"GitHubRepositoryName", "MyBranchName", "cpname", "GitHubRepositoryName-MyBranchName-cpname-254D7E69"},
	}
	for _, tt := range tests {
		if got := SeedName(tt.repo, tt.branch, tt.pipeline); got != tt.want {
			t.Errorf("SeedName(%q, %q, %q) = %q, want %q", tt.repo, tt.branch, tt.pipeline, got, tt.want)
		}
	}
	if got, want := SeedKey(DefaultPrefix, "GitHubRepositoryName", "MyBranchName", "cpname"), "mono-repo/config/GitHubRepositoryName-MyBranchName-cpname-254D7E69.json"; got != want {
		t.Errorf("SeedKey = %q, want %q", got, want)
	}
}

func TestSeedNameCutsCodePoints(t *testing.T) {
	// 52 code points, not bytes: Python slices str by code point. The
	// expected name was computed with the predecessor's Python expression.
	got := SeedName("ré", "ü", "pipeline-with-a-long-name-that-is-cut-somewhere-around-here")
	if want := "ré-ü-pipeline-with-a-long-name-that-is-cut-somewhere-444D2E43"; got != want {
		t.Errorf("SeedName = %q, want %q", got, want)
	}
}

func TestLookupPrefixVectors(t *testing.T) {
	// The predecessor's test_build_prefix cases.
	tests := []struct{ prefix, repo, branch, want string }{
		{"prefix", "repo", "branch", "prefix/repo-branch"},
		{"superlongprefixtomakesure-we-arent-off", "repo", "branch", "superlongprefixtomakesure-we-arent-off/repo-branch"},
		{"prefix", "TransactionalEmailTemplates", "experiment-with-cloudformation-setup-ses-config-set-events", "prefix/TransactionalEmailTemplates-experiment-with-cloudfor"},
	}
	for _, tt := range tests {
		if got := LookupPrefix(tt.prefix, tt.repo, tt.branch); got != tt.want {
			t.Errorf("LookupPrefix(%q, %q, %q) = %q, want %q", tt.prefix, tt.repo, tt.branch, got, tt.want)
		}
	}
}

func TestMarshalIsPythonJSONDumps(t *testing.T) {
	// testdata holds the bytes Python's json.dumps wrote for these documents.
	tests := []struct {
		file string
		doc  Document
	}{
		{"testdata/python-dumps.json", Document{"GitHubRepositoryName", "MyBranchName", "services/api/.*, libs/.*", "cpname"}},
		{"testdata/python-dumps-unicode.json", Document{"r\u00e9po", "feature/\U0001F600\"q\"\\", "docs/\t.*", "p"}},
	}
	for _, tt := range tests {
		want, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := tt.doc.Marshal(); string(got) != string(want) {
			t.Errorf("Marshal:\n got %s\nwant %s", got, want)
		}
		back, err := ParseDocument(want)
		if err != nil {
			t.Fatal(err)
		}
		if back != tt.doc {
			t.Errorf("ParseDocument(%s) = %+v, want %+v", tt.file, back, tt.doc)
		}
	}
}

func TestParseDocument(t *testing.T) {
	d, err := ParseDocument([]byte(`{"GitHubRepo":"r","GitHubBranch":"b","ChangeMatchExpressions":"x/.*","CodePipelineName":"p","ServiceToken":"arn:aws:lambda:…","Extra":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d != (Document{"r", "b", "x/.*", "p"}) {
		t.Errorf("got %+v", d)
	}
	for _, bad := range []string{`{"GitHubRepo": 5}`, `[1]`, `{`, ``} {
		if _, err := ParseDocument([]byte(bad)); err == nil {
			t.Errorf("ParseDocument(%q) succeeded", bad)
		}
	}
}
