package relaycmd

import (
	"os"
	"testing"

	"github.com/pomdev/pomdev/internal/pgtest"
)

// TestMain stops the PostgreSQL cluster the tests start when
// POMDEV_TEST_STORE=postgres and POMDEV_TEST_POSTGRES is unset.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
