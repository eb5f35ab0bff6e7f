package ec2client

import (
	"context"
	"io"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// A request body the SDK builds can cut the answer to its own request
// short. The SDK closes the body as soon as the answer's head has arrived,
// while net/http may still be inside its write of the request: once the
// last byte is on the wire it copies the rest of the body to io.Discard,
// to check there is none. The EC2 Query serializer makes the body a
// *bytes.Reader, whose WriteTo the SDK exposes through its close-safe
// wrapper; after the close that WriteTo returns io.EOF, which io.Copy
// reports as an error, so net/http takes the write as failed and closes
// the connection under the answer being read ("use of closed network
// connection"). Requests larger than the transport's 4 KiB write buffer
// (InstanceHealth's 100 ids, large tag, terminate and fleet calls) send
// their last bytes from that copy and are exposed; smaller ones are sent
// by the final flush, after the check. Without WriteTo the wrapper falls
// back to Read, whose io.EOF after the close is the end of the body: the
// check passes and the connection stays up.
//
// Sources: smithy-go transport/http client.go (ClientHandler.Handle closes
// the built request's body once Do returns) and internal/io/safe.go
// (safeWriteToReadCloser.WriteTo returns io.EOF once closed); the io.Copy
// documentation (a source's WriteTo is used first); net/http transfer.go
// (transferWriter.writeBody's copy of the rest to io.Discard) and the
// Transport.WriteBufferSize documentation ("currently 4KB"). The symptom
// is aws/aws-sdk-go-v2 issue #2737, whose fix (pull request #2949, in
// aws/retry's retryable errors) retries it: that costs a second request,
// this removes the cause.

// readOnlyBody hides the WriteTo of a request stream, keeping Read and
// Seek (the SDK rewinds the stream to sign and to retry).
type readOnlyBody struct{ s io.ReadSeeker }

func (b readOnlyBody) Read(p []byte) (int, error) { return b.s.Read(p) }

func (b readOnlyBody) Seek(off int64, whence int) (int64, error) { return b.s.Seek(off, whence) }

// hideWriteTo is a build-step middleware that makes every request stream
// that has a WriteTo a readOnlyBody.
var hideWriteTo = middleware.BuildMiddlewareFunc("ec2autoscale.HideRequestBodyWriteTo",
	func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			if s, ok := req.GetStream().(interface {
				io.ReadSeeker
				io.WriterTo
			}); ok {
				r, err := req.SetStream(readOnlyBody{s})
				if err != nil {
					return middleware.BuildOutput{}, middleware.Metadata{}, err
				}
				in.Request = r
			}
		}
		return next.HandleBuild(ctx, in)
	})

// addHideWriteTo adds hideWriteTo to an operation's stack.
func addHideWriteTo(stack *middleware.Stack) error {
	return stack.Build.Add(hideWriteTo, middleware.After)
}
