# logwarden agent image.
#
#   docker build -t logwarden .
#   docker run -d --name logwarden \
#     -v /var/log/myapp:/var/log/myapp:ro \
#     -v "$PWD/config.yaml:/etc/logwarden/config.yaml:ro" \
#     -v logwarden-state:/var/lib/logwarden \
#     logwarden
#
# Set `state_dir: /var/lib/logwarden` in the config: checkpoints and dead letters must outlive the
# container, or a new container would re-read (and re-ship) every file from its start position.
# The agent runs as uid 10001; the mounted log files must be readable by it.

# ---- build: compile TypeScript with the dev dependencies, then drop them ----
FROM node:20-bookworm-slim AS build
# re2 (linear-time regexes for alert rules) builds from source with node-gyp.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a code change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: production dependencies and compiled code only ----
FROM node:20-bookworm-slim AS runtime
# postgresql-client: pg_dump for the scheduled database backups.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 logwarden \
 && useradd --system --uid 10001 --gid logwarden --home-dir /var/lib/logwarden --shell /usr/sbin/nologin logwarden \
 && mkdir -p /var/lib/logwarden /etc/logwarden \
 && chown logwarden:logwarden /var/lib/logwarden
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The built-in rule packs are YAML read at run time.
COPY --from=build /src/rules ./rules
VOLUME ["/var/lib/logwarden"]
USER logwarden
ENTRYPOINT ["node", "dist/agent/cli.js"]
CMD ["run", "-c", "/etc/logwarden/config.yaml"]
