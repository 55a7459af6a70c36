// /tracks/:id: a track lives on its album's page (search links here)
import { api } from '../lib/api.js';

export default {
  path: '/tracks/:id',
  title: 'Track',
  async render(main, ctx) {
    const track = await api.get(`/api/v1/tracks/${encodeURIComponent(ctx.params.id)}`, null, { signal: ctx.signal });
    ctx.navigate(`/albums/${encodeURIComponent(track.album_id)}#track-${track.id}`, { replace: true });
  },
};
