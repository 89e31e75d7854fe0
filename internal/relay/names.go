package relay

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

var adjectives = strings.Fields(`
able amber ample azure bold brave brisk bright calm clever cosmic crisp
curious daring deft eager early fancy fast fierce fluent gentle glad golden
grand happy hardy honest jolly keen kind lively lucky merry mighty modest
nimble noble plucky polite proud quick quiet rapid ready robust rosy sharp
shiny silver sleek smart snappy solid steady sunny swift tidy upbeat vivid
warm wise witty zesty`)

var animals = strings.Fields(`
badger bear beaver bison bobcat camel cheetah cobra condor cougar coyote crane
dingo dolphin eagle falcon ferret finch fox gazelle gecko gibbon heron hippo
ibis impala jackal jaguar koala lemur leopard lion llama lynx magpie marmot
marten mink moose narwhal ocelot orca osprey otter owl panda panther parrot
pelican penguin puffin quail rabbit raven robin salmon seal shark sloth stork
swan tapir tiger toucan walrus wombat`)

// dynamicName derives a route name such as brave-otter-042 from a key
// fingerprint. attempt > 0 gives the alternatives used when the first name
// is held by another key, so names stay stable per key.
func dynamicName(fingerprint string, attempt int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", fingerprint, attempt)))
	a := binary.BigEndian.Uint32(h[0:4]) % uint32(len(adjectives))
	b := binary.BigEndian.Uint32(h[4:8]) % uint32(len(animals))
	n := binary.BigEndian.Uint32(h[8:12]) % 1000
	return fmt.Sprintf("%s-%s-%03d", adjectives[a], animals[b], n)
}

// virtualPort derives the port reported for a dynamic forward, in
// [32768, 65536), stable per key.
func virtualPort(fingerprint string) uint32 {
	h := sha256.Sum256([]byte("port:" + fingerprint))
	return 32768 + binary.BigEndian.Uint32(h[:4])%32768
}
