"""Non-interactive exec in a pod, run by the gateway itself (the Lambda holds the stream).

``channels`` is the pure part (the channel protocol, bounded output, the exit Status);
``client`` opens kube-apiserver's WebSocket exec; ``service`` decides, runs, masks and records
one ``POST /v1/exec/{cluster}``; ``approval`` computes what an exec approval binds.
"""
