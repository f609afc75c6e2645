# Static binaries on distroless; the Helm chart runs /receiver, /worker and "/receiver migrate".
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/receiver ./cmd/worker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/receiver /out/worker /
USER 65532:65532
ENTRYPOINT ["/receiver"]
