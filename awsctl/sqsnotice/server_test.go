package sqsnotice_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	queueURL   = "https://sqs.us-east-1.amazonaws.com/123456789012/spot-notices"
	accessKey  = "AKIDEXAMPLE"
	jsonType   = "application/x-amz-json-1.0"
	targetPref = "AmazonSQS."
)

type message struct {
	id, body, receipt string
	host              int // the SQS server holding it
}

type receiveRequest struct {
	QueueUrl            string
	MaxNumberOfMessages int
	WaitTimeSeconds     *int // nil when the request omits it
	at                  time.Time
}

// wait is the request's WaitTimeSeconds, -1 when omitted.
func (r receiveRequest) wait() int {
	if r.WaitTimeSeconds == nil {
		return -1
	}
	return *r.WaitTimeSeconds
}

type deleteRequest struct {
	QueueUrl string
	Entries  []struct{ Id, ReceiptHandle string }
}

// failure is an error answer the queue gives instead of serving a call; the
// zero failure serves the call.
type failure struct {
	status     int
	errType    string // the JSON body's __type
	queryError string // the x-amzn-query-error header, "Code;Sender"
	message    string
}

// queueServer is an SQS queue speaking the AWS JSON 1.0 protocol of the
// current SDK. Received messages stay in flight (invisible) until deleted;
// they never become visible again, which a test observes as "not deleted".
//
// As SQS does, a request without WaitTimeSeconds waits as long as the
// queue's ReceiveMessageWaitTimeSeconds attribute (waitSeconds) says, and
// a short poll (a wait of 0) looks only at a random half of the servers
// holding the queue's messages, so that it may return some of the messages
// or none; a long poll looks at every server.
type queueServer struct {
	mu          sync.Mutex
	visible     []message
	inflight    map[string]message // by receipt handle
	changed     chan struct{}      // closed when a message is sent
	seq         int
	waitSeconds int        // the queue's ReceiveMessageWaitTimeSeconds
	hosts       int        // servers the messages are spread over
	sample      *rand.Rand // which servers a short poll asks

	receives   []receiveRequest
	deletes    []deleteRequest
	failNext   map[string][]failure // by operation
	failDelete map[string]failure   // by receipt handle: the batch entry fails
	badReqs    []string
}

func newQueueServer() *queueServer {
	return &queueServer{
		inflight:   map[string]message{},
		changed:    make(chan struct{}),
		hosts:      4,
		sample:     rand.New(rand.NewPCG(1, 2)),
		failNext:   map[string][]failure{},
		failDelete: map[string]failure{},
	}
}

func (q *queueServer) send(bodies ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, b := range bodies {
		q.seq++
		q.visible = append(q.visible, message{id: fmt.Sprintf("5fea7756-0ea4-451a-a703-a558b933e%03d", q.seq), body: b, host: q.seq % q.hosts})
	}
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *queueServer) fail(op string, f ...failure) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failNext[op] = append(q.failNext[op], f...)
}

func (q *queueServer) state() (visible, inflight int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.visible), len(q.inflight)
}

func (q *queueServer) receiveLog() []receiveRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]receiveRequest(nil), q.receives...)
}

func (q *queueServer) deleteLog() []deleteRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]deleteRequest(nil), q.deletes...)
}

// inflightReceipts are the receipt handles of the messages received and
// not deleted.
func (q *queueServer) inflightReceipts() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var rs []string
	for r := range q.inflight {
		rs = append(rs, r)
	}
	return rs
}

func (q *queueServer) refused() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.badReqs...)
}

func (q *queueServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPref)
	q.mu.Lock()
	var bad []string
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		bad = append(bad, "not POST /")
	}
	if ct := r.Header.Get("Content-Type"); ct != jsonType {
		bad = append(bad, "content type "+ct)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "Credential="+accessKey+"/") {
		bad = append(bad, "not signed")
	}
	if len(bad) > 0 {
		q.badReqs = append(q.badReqs, op+": "+strings.Join(bad, ", "))
	}
	var f *failure
	if fs := q.failNext[op]; len(fs) > 0 {
		f, q.failNext[op] = &fs[0], fs[1:]
		if f.status == 0 {
			f = nil // this call is served
		}
	}
	q.mu.Unlock()

	w.Header().Set("Content-Type", jsonType)
	switch op {
	case "ReceiveMessage":
		q.receive(w, r, f)
	case "DeleteMessageBatch":
		q.deleteBatch(w, r, f)
	default:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#UnsupportedOperation","message":"unexpected operation %s"}`, op)
	}
}

func (f *failure) write(w http.ResponseWriter) {
	if f.queryError != "" {
		w.Header().Set("X-Amzn-Query-Error", f.queryError)
	}
	w.WriteHeader(f.status)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, f.errType, f.message)
}

func (q *queueServer) receive(w http.ResponseWriter, r *http.Request, f *failure) {
	var req receiveRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	req.at = time.Now()
	q.mu.Lock()
	q.receives = append(q.receives, req)
	q.mu.Unlock()
	if f != nil {
		f.write(w)
		return
	}
	if req.QueueUrl != queueURL {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}`)
		return
	}
	limit := req.MaxNumberOfMessages
	if limit == 0 {
		limit = 1
	}
	q.mu.Lock()
	wait := req.wait()
	if wait < 0 {
		wait = q.waitSeconds
	}
	q.mu.Unlock()
	// Long polling: wait for a message or for the wait time to pass.
	expired := time.After(time.Duration(wait) * time.Second)
	for waiting := wait > 0; ; {
		q.mu.Lock()
		if len(q.visible) > 0 || !waiting {
			break // still locked
		}
		changed := q.changed
		q.mu.Unlock()
		select {
		case <-changed:
		case <-expired:
			waiting = false
		case <-r.Context().Done():
			return
		}
	}
	// A long poll asks every server, a short one half of them.
	asked := make([]bool, q.hosts)
	for i, h := range q.sample.Perm(q.hosts) {
		asked[h] = wait > 0 || i < max(1, q.hosts/2)
	}
	var batch, rest []message
	for _, m := range q.visible {
		if len(batch) < limit && asked[m.host] {
			batch = append(batch, m)
		} else {
			rest = append(rest, m)
		}
	}
	q.visible = rest
	type wireMessage struct{ MessageId, ReceiptHandle, MD5OfBody, Body string }
	out := struct{ Messages []wireMessage }{Messages: []wireMessage{}}
	for _, m := range batch {
		q.seq++
		m.receipt = fmt.Sprintf("AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq-%s-%d", m.id, q.seq)
		q.inflight[m.receipt] = m
		sum := md5.Sum([]byte(m.body))
		out.Messages = append(out.Messages, wireMessage{m.id, m.receipt, hex.EncodeToString(sum[:]), m.body})
	}
	q.mu.Unlock()
	_ = json.NewEncoder(w).Encode(out)
}

func (q *queueServer) deleteBatch(w http.ResponseWriter, r *http.Request, f *failure) {
	var req deleteRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deletes = append(q.deletes, req)
	if f != nil {
		f.write(w)
		return
	}
	type okEntry struct{ Id string }
	type failedEntry struct {
		Id, Code, Message string
		SenderFault       bool
	}
	out := struct {
		Successful []okEntry
		Failed     []failedEntry
	}{Successful: []okEntry{}, Failed: []failedEntry{}}
	for _, e := range req.Entries {
		if f, ok := q.failDelete[e.ReceiptHandle]; ok {
			out.Failed = append(out.Failed, failedEntry{Id: e.Id, Code: f.errType, Message: f.message, SenderFault: f.status < 500})
			continue
		}
		delete(q.inflight, e.ReceiptHandle)
		out.Successful = append(out.Successful, okEntry{e.Id})
	}
	_ = json.NewEncoder(w).Encode(out)
}
