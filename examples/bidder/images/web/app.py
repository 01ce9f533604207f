"""bidder: a real-time bidder's JSON endpoint (the 000 write-up's vanilla-rtb bidder, in flask).

POST /bid/<campaign>  an OpenRTB 2.5 bid request in, a bid response out: one bid per banner
                      impression at 1.25x its floor (at least 0.10), or 204 when nothing fits
GET  /healthz         the process is up (the proxy's check)
The answer depends only on the request, so every task gives the same bytes for the same body.
"""
import socket

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
HOST = socket.gethostname()


@app.after_request
def served_by(r):
    r.headers["X-Served-By"] = HOST
    return r


@app.post("/bid/<campaign>")
def bid(campaign):
    req = request.get_json(force=True, silent=True)
    if not isinstance(req, dict) or "id" not in req:
        return jsonify(error="not an OpenRTB bid request"), 400
    bids = [
        {
            "id": f"{req['id']}-{i}",
            "impid": imp["id"],
            "price": round(max(float(imp.get("bidfloor", 0)), 0.10) * 1.25, 4),
            "adid": f"{campaign}-{imp['banner'].get('w', 0)}x{imp['banner'].get('h', 0)}",
            "crid": f"creative-{campaign}",
            "w": imp["banner"].get("w"),
            "h": imp["banner"].get("h"),
        }
        for i, imp in enumerate(req.get("imp", []), 1)
        if "banner" in imp
    ]
    if not bids:
        return Response(status=204)
    return jsonify(id=req["id"], bidid=f"{req['id']}-{campaign}", cur="USD",
                   seatbid=[{"seat": campaign, "bid": bids}])


@app.get("/healthz")
def healthz():
    return "ok\n"
