// The peer of `make bench`: the least a worker built on @cloudflare/workers-oauth-provider needs
// to serve the flows the bench drives. /authorize approves at once (no login, no consent page)
// for the user named by `?user=` (default "bench"), so what is measured is the library's own
// work: client lookup, grant and code storage, token issue, rotation and validation.
import { OAuthProvider } from '@cloudflare/workers-oauth-provider';

const defaultHandler = {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/authorize') {
      const oauthReq = await env.OAUTH_PROVIDER.parseAuthRequest(request);
      const userId = url.searchParams.get('user') || 'bench';
      const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
        request: oauthReq,
        userId,
        metadata: {},
        scope: oauthReq.scope,
        props: { userId, scope: oauthReq.scope },
      });
      return Response.redirect(redirectTo, 302);
    }
    return Response.json({ peer: true });
  },
};

// The token's props as JSON: the library has validated the bearer token before this runs.
const apiHandler = {
  async fetch(request, env, ctx) {
    return Response.json({ props: ctx.props, scope: ctx.auth?.scope });
  },
};

// The resource (token audience) must be the origin the worker is reached on, which is only known
// once a request arrives (the bench picks a free port), so the provider is built on first use.
let provider;
export default {
  fetch(request, env, ctx) {
    provider ??= new OAuthProvider({
      apiRoute: '/api',
      apiHandler,
      defaultHandler,
      authorizeEndpoint: '/authorize',
      tokenEndpoint: '/token',
      clientRegistrationEndpoint: '/register',
      scopesSupported: ['api', 'offline_access'],
      resourceMetadata: { resource: `${new URL(request.url).origin}/api` },
    });
    return provider.fetch(request, env, ctx);
  },
};
