//go:build kte_floor_deps

package main

// Built with -tags kte_floor_deps (lambdasim.FloorDepsTag), the floor also
// imports every third-party package that KTE's own packages import, and
// calls none of them: the dependency floor of bench/coldstart, which shows
// what their package initialisation and their always-linked code cost a
// cold start apart from anything KTE does. bench/coldstart's tests keep the
// list equal to KTE's.
import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	_ "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/kinesis"
	_ "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	_ "github.com/aws/smithy-go"
	_ "github.com/aws/smithy-go/transport/http"
	_ "github.com/goccy/go-json"
	_ "github.com/valyala/fasthttp"
)
