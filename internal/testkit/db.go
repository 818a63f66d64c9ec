package testkit

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Connect opens a mongo-driver client to the test database server, for
// tests that look at what the gateway stored. It is closed when the test ends.
func (db *DB) Connect(tb testing.TB) *mongo.Client {
	tb.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(db.URI).SetTimeout(10 * time.Second))
	if err != nil {
		tb.Fatalf("connect to test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Disconnect(ctx)
	})
	return client
}

// Documents returns every document of every collection of database, as raw
// BSON, keyed by collection name. Tests search the raw bytes for secrets
// that must never be stored (TK-1).
func (db *DB) Documents(tb testing.TB, database string) map[string][]bson.Raw {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := db.Connect(tb).Database(database)
	names, err := d.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		tb.Fatalf("list collections of %s: %v", database, err)
	}
	out := make(map[string][]bson.Raw, len(names))
	for _, name := range names {
		cur, err := d.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			tb.Fatalf("find in %s.%s: %v", database, name, err)
		}
		var docs []bson.Raw
		for cur.Next(ctx) {
			docs = append(docs, append(bson.Raw(nil), cur.Current...))
		}
		if err := cur.Err(); err != nil {
			tb.Fatalf("read %s.%s: %v", database, name, err)
		}
		_ = cur.Close(ctx)
		out[name] = docs
	}
	return out
}

// dropDatabase removes a test database from a real MongoDB when the test
// ends, so runs against GATEHOUSE_TEST_MONGODB_URI leave nothing behind.
func dropDatabase(tb testing.TB, uri, database string) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Second))
		if err != nil {
			return
		}
		defer client.Disconnect(ctx)
		_ = client.Database(database).Drop(ctx)
	})
}
