from scopesvc.v1 import scopesvc_pb2 as pb


def test_check_allows_through_real_server(stub):
    response = stub.Check(pb.CheckRequest(token=pb.Token(scopes=["users:read"]), method="GET", path="/users/me"))
    assert response.allowed
    assert response.endpoint == "GET /users/me"
