"""`make chaos`: every flow crashed at every external call, and nothing lost or doubled.

For each flow, a run without a crash first records the external calls the flow makes (every boto3 call, every HTTP
call to DingTalk, Drone or GitLab). Then, for each of those calls in turn, the flow runs again from a fresh world
with a crash there: before the call or after it returned, as an exception (a connection never made, an answer
lost) or as a kill (the process stops: nothing after it runs, and the SQS message comes back after the queue's
visibility timeout). Redeliveries and retries then run as SQS, Lambda and the senders would, on a virtual clock,
until nothing is left to do, and the flow's effects are counted: each must have happened exactly once, or the job
must be in the DLQ with its reason (an effect in doubt is parked, never repeated blindly). A line per crash point,
and last `crash points: N, lost: L, doubled: D` (chaos/run.py; the machinery is chaos/harness.py).

Adding a flow is one function in chaos/flows.py (or any module run.py imports), registered with `@flow(name)`. It
gets a fresh `World`, sets up what the flow needs (not crash points), triggers it, and returns a function that
counts the effects, each of which must come to 1:

    @flow("restart")
    def restart(world: World):
        chat(world, "restart shop-api 127", "bob.li", "Bob Li")      # set up and trigger: a job on the queue
        return lambda: {
            "build started": sum(1 for b in world.drone.builds["shop/shop-api"] if b.get("parent") == 127),
            "reply": world.messages("Restarted shop-api #127"),
        }

What a World offers: `config()` (the stored config, the example's, pointing at the fakes), `enqueue(kind, payload,
job_id)` (a job as ingress queues it), `gitlab_hook(event, hook)` (a delivery through the GitLab function, sent again
by "GitLab" while it fails: its calls are crash points too), `messages(containing)` and `feishu_messages(containing)`
(what reached DingTalk, Feishu), `run()` (in a flow's set-up: runs what is queued with no crash planned, e.g. an
ops preview before the confirm that is the trigger), and the fakes themselves: `drone`, `gitlab`, `dingtalk`,
`feishu`, `kubernetes` (local/fake_*.py). A flow for another peer (SSM, Route 53, another chat channel) needs its
calls to go through boto3, requests or the Kubernetes client, the three wrapped call paths, and a fake to count on,
as the local stack's are.
"""
